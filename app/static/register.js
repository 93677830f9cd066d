// Live hints on the registration form: the collaboration mail address and
// free account names while typing. The form works the same without it.
(function () {
  "use strict";
  var script = document.currentScript;
  var hintsUrl = script && script.dataset.hints;
  var form = document.querySelector("form.form");
  if (!hintsUrl || !form || !window.fetch) { return; }
  var field = function (name) { return form.elements.namedItem(name); };
  var preview = document.getElementById("mail-preview");
  var box = document.getElementById("suggestions");
  var status = document.getElementById("account-name-status");
  var namesStatus = document.getElementById("names-status");
  var timer = null;
  // The server's message under the account name stays until it is edited:
  // the live status never says the same thing a second time.
  var accountNameEdited = false;

  function render(data) {
    preview.textContent = "";
    if (data.mail_preview) {
      preview.append(script.dataset.previewLabel + " ");
      var code = document.createElement("code");
      code.textContent = data.mail_preview;
      preview.append(code);
    }
    var list = box.querySelector("ul");
    list.textContent = "";
    data.suggestions.forEach(function (name) {
      var item = document.createElement("li");
      var chip = document.createElement("button");
      chip.type = "button";
      chip.className = "chip";
      chip.textContent = name;
      chip.addEventListener("click", function () {
        field("account_name").value = name;
        accountNameEdited = true;
        refresh();
      });
      item.append(chip);
      list.append(item);
    });
    box.hidden = data.suggestions.length === 0;
    document.getElementById("maybe-known").hidden = !data.maybe_known;
    if (data.account_name === null || !accountNameEdited) {
      status.textContent = "";
    } else {
      status.textContent = data.account_name || script.dataset.availableLabel;
    }
    // The same rules and messages as the server's on submit.
    var problems = data.names || {};
    var messages = Object.keys(problems).map(function (name) { return problems[name]; });
    if (data.swapped) { messages.push(data.swapped); }
    namesStatus.textContent = messages.filter(function (m, i) {
      return messages.indexOf(m) === i;
    }).join(" ");
  }

  function refresh() {
    var params = new URLSearchParams();
    ["given_name", "middle_name", "family_name", "account_name"].forEach(function (name) {
      params.set(name, field(name).value);
    });
    fetch(hintsUrl + "?" + params.toString(), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data) { render(data); } })
      .catch(function () { /* hints are optional; the server validates on submit */ });
  }

  // The page may come back with names filled in (after an error).
  if (field("given_name").value && field("family_name").value) { refresh(); }

  ["given_name", "middle_name", "family_name", "account_name"].forEach(function (name) {
    field(name).addEventListener("input", function () {
      if (name === "account_name") { accountNameEdited = true; }
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 300);
    });
  });
})();

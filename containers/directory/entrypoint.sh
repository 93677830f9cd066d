#!/bin/sh
# Entrypoint of the portal's directory image.
#
# Writes slapd.conf from the templates made at build time by
# app/devstack/containers.py (the dev stack's own generator), loads the
# bootstrap tree (and the demo data with LDAP_DEMO=true) into the data volume
# on first start, then runs slapd in the foreground. Settings (defaults in
# $LDAP_TEMPLATE_DIR/defaults.env):
#   LDAP_BASE_DN, LDAP_ORGANISATION, LDAP_MAIL_DOMAIN, LDAP_MAIN_GROUP
#   LDAP_ROOT_PASSWORD or LDAP_ROOT_PASSWORD_FILE        (cn=admin,<base>)
#   LDAP_SERVICE_PASSWORD or LDAP_SERVICE_PASSWORD_FILE  (cn=portal,ou=services,<base>)
#   LDAP_DEMO=true         demo institutions, IRs and helpdesk (first start only)
#   LDAP_PORT=389, LDAPS_PORT=636 (ldaps only with $LDAP_TLS_DIR/tls.crt and tls.key;
#                          ca.crt there, if present, is used for client certificates)
#   LDAP_LOG_LEVEL=none    slapd -d level (e.g. stats)
#   LDAP_REQUIRE_TLS=false true: password binds without TLS only from loopback
#                          and ldapi (needs tls.crt and tls.key; the rootdn excepted)
# `entrypoint.sh render DIR` only writes slapd.conf and bootstrap.ldif to DIR
# (used by the tests); any other command is run as given.
set -eu

template_dir=${LDAP_TEMPLATE_DIR:-/usr/share/ldap-portal}
workdir=/var/lib/ldap-portal
data_dir=$workdir/data
conf_dir=${LDAP_CONF_DIR:-/run/ldap-portal}
tls_dir=${LDAP_TLS_DIR:-/etc/ldap/tls}
module_path=${LDAP_MODULE_PATH:-/usr/lib/ldap}

die() { echo "ldap-portal: $*" >&2; exit 1; }

. "$template_dir/defaults.env"

# NAME from $NAME or from the file named by $NAME_FILE (trailing newlines dropped).
secret() {
    eval "value=\${$1:-}"
    eval "file=\${$1_FILE:-}"
    if [ -n "$file" ]; then
        [ -r "$file" ] || die "$1_FILE: cannot read $file"
        value=$(cat "$file")
    fi
    [ -n "$value" ] || die "$1 (or $1_FILE) is required"
    eval "$1=\$value"
}

# An {ARGON2} hash by slapd's own module; the password never is an argument.
hash_password() {
    pwfile=$(mktemp)
    printf '%s' "$1" >"$pwfile"
    slappasswd -o module-path="$module_path" -o module-load=argon2 -h '{ARGON2}' -T "$pwfile"
    rm -f "$pwfile"
}

# Copy TEMPLATE to OUTPUT replacing ${NAME} by the environment's NAME for the
# names in $fill_names (values are taken literally); any ${NAME} left is an error.
fill() {
    awk -v names="$fill_names" '
        BEGIN { n = split(names, list, " "); for (i = 1; i <= n; i++) allowed[list[i]] = 1 }
        {
            line = $0; out = ""
            while ((p = index(line, "${")) > 0) {
                rest = substr(line, p + 2); q = index(rest, "}")
                name = q > 0 ? substr(rest, 1, q - 1) : ""
                if (name in allowed) { out = out substr(line, 1, p - 1) ENVIRON[name]; line = substr(rest, q + 1) }
                else { bad = bad " ${" name "}"; out = out substr(line, 1, p + 1); line = rest }
            }
            print out line
        }
        END { if (bad != "") { print "unfilled placeholders:" bad > "/dev/stderr"; exit 1 } }
    ' "$1" >"$2"
}

no_newline() {
    case "$2" in
        *'
'*) die "$1 must not contain a line break" ;;
    esac
}

prepare() {
    secret LDAP_ROOT_PASSWORD
    secret LDAP_SERVICE_PASSWORD
    for name in LDAP_BASE_DN LDAP_ORGANISATION LDAP_MAIL_DOMAIN LDAP_MAIN_GROUP; do
        eval "no_newline $name \"\$$name\""
    done
    case "$LDAP_BASE_DN" in
        dc=*) ;;
        *) die "LDAP_BASE_DN must start with dc= (e.g. dc=example,dc=org), not $LDAP_BASE_DN" ;;
    esac
    LDAP_DC=${LDAP_BASE_DN%%,*}
    LDAP_DC=${LDAP_DC#dc=}
    LDAP_ROOT_PASSWORD_HASH=$(hash_password "$LDAP_ROOT_PASSWORD")
    LDAP_TLS_CONFIG=""
    listen="ldap://:${LDAP_PORT:-389}/ ldapi://%2Frun%2Fslapd%2Fldapi/"
    if [ -f "$tls_dir/tls.crt" ] && [ -f "$tls_dir/tls.key" ]; then
        # Copies slapd can read after dropping to the openldap user.
        mkdir -p "$conf_dir/tls"
        for file in tls.crt tls.key ca.crt; do
            [ -f "$tls_dir/$file" ] && cp "$tls_dir/$file" "$conf_dir/tls/$file"
        done
        LDAP_TLS_CONFIG="TLSCertificateFile $conf_dir/tls/tls.crt
TLSCertificateKeyFile $conf_dir/tls/tls.key"
        if [ -f "$conf_dir/tls/ca.crt" ]; then
            LDAP_TLS_CONFIG="$LDAP_TLS_CONFIG
TLSCACertificateFile $conf_dir/tls/ca.crt"
        fi
        listen="$listen ldaps://:${LDAPS_PORT:-636}/"
    fi
    case "${LDAP_REQUIRE_TLS:-false}" in
        true|yes|1|on)
            [ -n "$LDAP_TLS_CONFIG" ] || die "LDAP_REQUIRE_TLS=true needs tls.crt and tls.key in $tls_dir"
            LDAP_ANONYMOUS_AUTH=$(cat "$template_dir/bind-tls-or-loopback.acl") ;;
        false|no|0|off) LDAP_ANONYMOUS_AUTH=$(cat "$template_dir/bind-anywhere.acl") ;;
        *) die "LDAP_REQUIRE_TLS must be true or false, not $LDAP_REQUIRE_TLS" ;;
    esac
    export LDAP_BASE_DN LDAP_DC LDAP_ORGANISATION LDAP_MAIL_DOMAIN LDAP_MAIN_GROUP \
        LDAP_ROOT_PASSWORD_HASH LDAP_TLS_CONFIG LDAP_ANONYMOUS_AUTH
    fill_names="LDAP_BASE_DN LDAP_DC LDAP_ORGANISATION LDAP_MAIL_DOMAIN LDAP_MAIN_GROUP
        LDAP_ROOT_PASSWORD_HASH LDAP_TLS_CONFIG LDAP_ANONYMOUS_AUTH"
}

# The tree: only when the database is created.
write_bootstrap() {
    LDAP_SERVICE_PASSWORD_HASH=$(hash_password "$LDAP_SERVICE_PASSWORD")
    template=bootstrap.ldif.in
    LDAP_DEMO_IR_PASSWORD_HASH="" LDAP_DEMO_HELPDESK_PASSWORD_HASH=""
    case "${LDAP_DEMO:-false}" in
        true|yes|1|on)
            template=bootstrap-demo.ldif.in
            LDAP_DEMO_IR_PASSWORD_HASH=$(hash_password "$LDAP_DEMO_IR_PASSWORD")
            LDAP_DEMO_HELPDESK_PASSWORD_HASH=$(hash_password "$LDAP_DEMO_HELPDESK_PASSWORD") ;;
    esac
    export LDAP_SERVICE_PASSWORD_HASH LDAP_DEMO_IR_PASSWORD_HASH LDAP_DEMO_HELPDESK_PASSWORD_HASH
    fill_names="$fill_names LDAP_SERVICE_PASSWORD_HASH LDAP_DEMO_IR_PASSWORD_HASH
        LDAP_DEMO_HELPDESK_PASSWORD_HASH"
    fill "$template_dir/$template" "$1"
}

umask 077
case "${1:-slapd}" in
    render)
        [ -n "${2:-}" ] || die "usage: entrypoint.sh render DIR"
        prepare
        fill "$template_dir/slapd.conf.in" "$2/slapd.conf"
        write_bootstrap "$2/bootstrap.ldif"
        exit 0 ;;
    slapd) ;;
    *) exec "$@" ;;
esac

prepare
mkdir -p "$conf_dir" "$data_dir" /run/slapd
fill "$template_dir/slapd.conf.in" "$conf_dir/slapd.conf"
if [ ! -e "$data_dir/data.mdb" ]; then
    echo "ldap-portal: creating the directory $LDAP_BASE_DN in $data_dir"
    write_bootstrap "$conf_dir/bootstrap.ldif"
    slapadd -q -f "$conf_dir/slapd.conf" -l "$conf_dir/bootstrap.ldif"
    rm -f "$conf_dir/bootstrap.ldif"
fi
chown -R openldap:openldap "$workdir" "$conf_dir" /run/slapd
chmod 0750 "$conf_dir"
echo "ldap-portal: serving $LDAP_BASE_DN on $listen"
exec slapd -d "${LDAP_LOG_LEVEL:-none}" -u openldap -g openldap -f "$conf_dir/slapd.conf" -h "$listen"

#!/bin/sh
# The portal's periodic jobs (the README's crontab) for a container without
# cron: every PORTAL_JOBS_INTERVAL seconds (600) the outbox and interrupted
# approvals, once a day the expiry warnings, the end of memberships, the
# unconfirmed requests and the reminders. Each command is idempotent.
# `portal-jobs --once` runs them all once and exits.
set -u
interval=${PORTAL_JOBS_INTERVAL:-600}
failed=0
run() { flask --app wsgi "$@" || { echo "portal-jobs: flask $* failed" >&2; failed=1; }; }
frequent() { run portal complete-approvals; run mail send --once; }
daily() { run accounts notify-expiring; run members expire; run requests expire-unconfirmed;
          run requests remind; }

if [ "${1:-}" = "--once" ]; then
    frequent; daily; exit $failed
fi
trap 'exit 0' TERM INT
last_day=""
while :; do
    frequent
    today=$(date -u +%F)
    if [ "$today" != "$last_day" ]; then daily; last_day=$today; fi
    sleep "$interval" & wait $!
done

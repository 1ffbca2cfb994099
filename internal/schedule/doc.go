// Package schedule reads schedule YAML (one file or a directory of them)
// into jobs, keeping positions so every error reads file:line:col.
//
// # Format
//
//	calendars:                   # optional business calendars
//	  uk:
//	    weekend: [sat, sun]      # default [sat, sun]; full names work too
//	    holidays: [2026-12-25, 2026-12-28..2026-12-31]  # ranges include both ends
//	    extra_business_days: []
//	    through: 2027-12-31      # last date covered; later dates are errors
//	resources:                   # optional; capacity per node (default 1)
//	  db/prod/connections: {capacity: 4, attributes: {tier: gold}}
//	  hosts/linux/h01: 8         # shorthand for {capacity: 8}
//	  api/vendor: {capacity: 1000, per: daily}   # consumable: returns at the next period
//	jobs:
//	  extract:
//	    description: Fetch prices
//	    period: daily            # or {type: daily, calendar: uk}
//	    timezone: Europe/London  # IANA name; default UTC
//	    environment: prod
//	    group: prices            # shown together in the dashboard's grid
//	    executor: local          # default local
//	    schedule: "@daily"       # shorthand for one more time trigger
//	    triggers:
//	      - schedule: "30 6 * * 1-5"
//	        period: previous     # same (default) | previous
//	      - after: other-job     # when other-job succeeds
//	    command: ["/opt/bin/extract", "--out", "/data"]
//	    # function: resize       # executor inprocess: the Go function to run
//	    dir: /data
//	    env: {MODE: full}
//	    params: {source: lse}    # any YAML mapping; TALON_PARAMS as JSON
//	    poll: 1m                 # default 1m
//	    timeout: 2h              # default none
//	    retries: {max: 2, delay: 5m}   # or retries: 2
//	    catchup: latest          # all | latest (default) | none
//	    catchup_window: 6h
//	    priority: 0
//	    constraints: {not_before: "07:00", max_running: 1}
//	    resources:               # all or nothing; see internal/resource
//	      db/{{environment}}/connections: 1
//	      hosts/linux/*: {count: 1, where: {cores: ">=16"}}
//	    # or a list: [{path: hosts/linux/*, count: 1, where: {…}}, {api/vendor: 5}]
//	    artifacts:               # what its runs produce; see internal/artifact
//	      report: "file:///data/{{period}}/report.csv"
//
// # Rules
//
//   - Job, environment and group names match [a-z0-9][a-z0-9_.-]* (at most 128
//     characters): lowercase, so a name reads the same in URLs, file
//     names, period keys and TALON_JOB, and without ':' or '/', which
//     period keys use as separators.
//   - Calendar names match [A-Za-z][A-Za-z0-9_-]* (at most 128
//     characters), the trigger grammar's CALNAME: `using US-NYSE` names
//     the calendar US-NYSE, and case matters.
//   - Unknown keys are errors, with the nearest known key as a hint. A key
//     with an empty (null) value counts as absent.
//   - The top level may also hold talon.yaml's keys (state, schedule,
//     listen, tls, auth, executors, logs, node, lease); they are skipped
//     here and are internal/config's business (which refuses the ones
//     Talon does not act on yet), so the quick start can be one file.
//   - Defaults: period daily, timezone UTC, executor local, poll 1m,
//     catchup latest, trigger period same, no timeout, no retries. The
//     loader fills them in; the rest of Talon reads them from the Job.
//   - command is an argv list, never a shell line, and is required unless
//     the executor is inprocess, which runs a Go function: the one named
//     by function:, else by the first word of command: (the older form,
//     whose other words become the function's arguments), else the one
//     named like the job. function: and command: do not mix, and
//     function: needs executor inprocess. With Options.Functions the
//     name must be a registered function.
//   - Durations are Go durations (90s, 1h30m) or whole days (2d).
//   - Numbers and durations have bounds (bounds.go): poll 1s to 24h,
//     timeout 1s to 30d (0: none), retries.max 0 to 100, retries.delay
//     1s to 7d (0: at once), catchup_window 1s to 366d (0: no bound),
//     priority -1000 to 1000, capacities and counts up to 1e9.
//   - executor must name one of Options.Executors, which the caller
//     passes (the executors the program has); inprocess jobs take no env
//     or dir.
//   - Trigger IDs are "schedule:EXPR" and "after:JOB"; the n-th repeat of
//     the same trigger in a job gets "#n", so IDs stay put across reloads.
//   - Completion triggers may not form a cycle; each loop is reported once.
//   - A job's resource request must name a declared resource, a namespace
//     above declared ones, or a glob (hosts/linux/*) matching one of them;
//     after {{environment}} is replaced by the job's environment, some
//     match must pass its where filters and have the capacity asked for:
//     a request that can never be met is an error.
//   - Declared artifacts are named like jobs; their URLs use a scheme of
//     artifact.Schemes, may hold the placeholders {{period}},
//     {{period_type}} and {{environment}} (the last only in a job with an
//     environment), and `*` within a path segment.
//   - YAML anchors, aliases and merge keys (<<) work; aliases may expand
//     to at most 1<<20 values per file. Top-level keys starting with "x-"
//     are ignored, to hold anchors: `x-defaults: &d {poll: 5m}`.
//
// Load and LoadBytes report every problem found as an ErrorList sorted by
// position, so `talon validate` shows them all at once.
package schedule

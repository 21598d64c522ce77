"""The names of what a study folder holds (see robustmia.experiments.runner), importable
without numerical libraries so that the report can find them."""

SPEC_FILE = "spec.yaml"          # the spec as given
LOG_FILE = "study.log"           # what was done, when
RESULTS_FILE = "results.json"    # per target: config, evaluation, attack records, training log, its audit folder
PHASES_FILE = "phases.json"      # the device, and the seconds of each phase of the study's last run (and of its report)
RUNS_FOLDER = "runs"             # one run folder per distinct training config
EXTERNAL_FOLDER = "external"     # per external target: its cached evaluation, PGD points and audit
AUDITS_FOLDER = "audits"         # per target: attacks.json + scores.npz (robustmia.privacy.results)
REPORT_FOLDER = "report"         # tables, figures, findings and report.html (robustmia.reporting)

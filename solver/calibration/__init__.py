"""Calibration of the cost model's efficiency parameters against published serving measurements
(issues 6 and 13; method and errors in docs/accuracy.md). Modules, in the order the data flows:

    measurements  docs/calibration/measured.csv -> rows (cards, precision, load, canonical units),
                  the skipped rows with their reason, the train/held-out split and row roles
    parameters    what is fitted: per card bandwidth utilization, per-layer overhead, collective
                  latency and link bandwidth, per card and precision mfu; defaults and card values
    protocol      how a benchmark's load becomes the load the planner's evaluator runs at
                  (max-load, static, closed loop, Poisson, burst); the metric is plan.json's
    transfer      parameters of cards without measurements, by architecture and link kind; the
                  leave-one-card-out parameters
    fit           the objective and the deterministic pattern search
    accuracy      predictions, absolute errors, percentiles, the held-out targets, leave-one-card-out
    calibrate     the whole run of `paraplan calibrate` and the summary it prints
    card_writer   the fitted (and transferred) values written into conditions/hardware/*.yaml
"""

"""Calibration of the cost model's efficiency parameters against published serving measurements
(issue 6; method and errors in docs/accuracy.md). Modules, in the order the data flows:

    measurements  docs/calibration/measured.csv -> rows (cards, precision, load, canonical units),
                  the skipped rows with their reason, the train/held-out split and row roles
    parameters    what is fitted: per card bandwidth utilization and per-layer overhead, per card
                  and precision mfu; the cards' defaults and current values
    protocol      how a benchmark's load becomes the batch the shared cost model is evaluated at
                  (max-load, static, closed loop, Poisson, burst), and the predicted metric
    fit           the objective and the deterministic pattern search
    accuracy      predictions, absolute errors, percentiles, the held-out targets
    calibrate     the whole run of `paraplan calibrate` and the summary it prints
    card_writer   the fitted values written into conditions/hardware/*.yaml (--write-cards)
"""

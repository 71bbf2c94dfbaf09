"""The evaluation behind ``make eval``: precision@k, mAP@10, bootstrap CIs, latency, report."""

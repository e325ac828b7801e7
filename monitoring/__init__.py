"""Monitoring: drift (Evidently), estimated (CBPE) and realized performance, decay, retrain
triggers and browsable reports. Imported by the CLI only, never by the service: Evidently is
heavy and the serving path must not load it."""

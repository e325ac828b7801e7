"""Acting on predictions: playbooks, pre-survey plans, the closed loop, outcomes, forecast."""

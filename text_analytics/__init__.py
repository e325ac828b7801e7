"""Customer text turned into structured signals: satisfaction scores, themes and reports."""

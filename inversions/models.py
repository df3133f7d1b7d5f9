"""The inversion work on an OP (queue, transfers, reports, publishing) lands here."""

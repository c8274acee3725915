"""Exports: the ledger (台账), the audit trail and a person's calendar feed.

Loading from the store (:mod:`bot.reports.records`), building rows and events (pure, no
I/O: :mod:`bot.reports.ledger`, :mod:`bot.reports.audit`, :mod:`bot.reports.ics`) and
writing files (:mod:`bot.reports.writers`) are kept apart, so the judgement of "how is this
task doing as of ``now``" can be tested without a database or a spreadsheet.
"""

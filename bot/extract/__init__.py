"""Turn a responsibility-list document (责任清单) into a draft v1 schedule.

The pipeline: :mod:`.reader` makes blocks (paragraph lines and table rows, each with its
source line); :mod:`.prose` and :mod:`.tables` find the numbered items; :mod:`.merge`
joins the notice body and its attached table; :mod:`.items` reads owners, deadline,
ongoing and frequencies out of each item; :mod:`.draft` writes the YAML for review.
"""

"""``lynkr replay SESSION``: one session read back turn by turn (:mod:`.gather`, :mod:`.layout`), and its recorded
upstream answers converted again by today's code and compared with what the client received (:mod:`.check`)."""

"""`hearing start MEETING_DIR`: a page on the organiser's own laptop that prepares a meeting without
writing YAML by hand, runs it, and goes on into the review and the delivery.

It lists every recording a run finds (a still, its length, a player, what ingest says about it) with
the fields of meeting.yaml (speaker, group, topic, the four consents, order, in and out), the meeting's
facts and the follow-up. Saving writes ``meeting.yaml`` into the meeting folder: the one file the
pipeline ever writes there, because it is the organiser's own; built with ``yaml.safe_dump``, read back
by the loader a hand-written file goes through before it takes the old one's place (atomically), the
previous one kept beside it as ``meeting.yaml.previous-<time>`` (a name ingest never takes for a
recording). Start runs `hearing run` (the same ``Runner``) on a thread, with its progress on the page;
then the review page of the output folder is served beside it; then the delivery (the folder, the ZIP
as `hearing render --zip` makes it). Everything it does can be done with files and commands.

The server is the review page's (``pipeline.review.server``): the same guards on every request (the
loopback address, Host, Origin, the fetch site, the session's token), the same headers, byte ranges and
one-line failures; stills and previews are made into OUT/work and served only from inside OUT.

Rooms: ``fields`` (meeting.yaml as the page shows and sends it; pure), ``listing`` (the recordings, their
stills and previews), ``job`` (the run on a thread, its progress), ``session`` (``Start``)
and ``server`` (the routes, and ``serve``).
"""

"""`hearing review`: a page on the organiser's own laptop to read, correct and approve every statement.

A small web server on the loopback address serves one page (plain HTML, CSS and JavaScript from
``pipeline/review/page``, nothing from a network), each statement's recording as a small preview every
browser plays, and a JSON API that reads and writes ``OUT/edits`` (the same files a person can edit by
hand, see ``stages/edits.py``). The Render button runs `hearing render` on a thread of the server.

Security, for a server that holds citizens' recordings and can write files. Any page the organiser
visits while it runs can send requests to 127.0.0.1 (and one on another port counts as the same site,
so it gets cookies along): only a secret stops it. So:

- it listens on 127.0.0.1 only; a request whose Host is not that address with the served port is
  refused (DNS rebinding), and so is one whose Origin is another site or that the browser marks as a
  subresource of another site (``Sec-Fetch-Site``);
- every request, reads included, carries the session's token: the address `hearing review` prints and
  opens ends in ``?token=...``, the page sends it in ``X-Review-Token`` with every call and in the
  address of its media and files; without it the answer is 403 (the page itself says to open the
  printed address). The lock file that lets a second `hearing review` join holds it, readable by the
  owner only;
- no other site may frame the page (``frame-ancestors 'none'``, ``X-Frame-Options``), and the page
  loads nothing but its own files (Content-Security-Policy);
- a request can name a statement by its id and nothing else, so no path it sends reaches the file
  system; a file it serves (a preview, the clip) must lie inside OUT once its links are resolved, and
  be a regular file;
- a refused request, or one whose body was not read, is answered with ``Connection: close`` and the
  connection closed, so no unread body is read as the next request; a JSON body nested deeper than
  ``MAX_DEPTH`` is 400; an unexpected failure is a 500 with one line, never a dropped connection;
- the times it stores (when an approval was made) are its own clock's, never a time the page sends.

One review at a time per output folder: a second `hearing review` opens the first one's page.

Rooms: ``guards`` (Host, Origin and token checks, the security headers, ``inside``), ``changes`` (a save's
body read and checked: ``read_json``, ``parse_change``, ``fields_after``), ``view`` (a statement as the
page shows it: ``statement_view``, ``flagged_words``), ``state`` (``Review``, the folder under review:
reading and saving), ``previews`` (the media the page plays), ``alignment`` (the engine and the added
words' alignments), ``render_job`` (the render the page starts), ``server`` (the HTTP handler and server)
and ``session`` (``review_lock`` and ``serve``). The first three are pure.
"""

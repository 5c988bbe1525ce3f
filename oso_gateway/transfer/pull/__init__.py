"""The pull workflow: the new school requests a dossier, the old school answers,
records the parents' inzage and delivers; each side keeps the request's state.

``payloads`` builds and reads the request and answer payloads (pure), ``matching`` compares a
dossier's pupil with a request (pure), ``service`` keeps the requests (``store.pull``) and sends
through the outbox; ``errors`` holds the codes OSO-E470..E499.
"""

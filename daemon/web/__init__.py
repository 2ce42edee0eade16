"""The web console (`shenbao web`): the staff's pages over the application layer (`daemon.app`).

Pages render the same views the command line prints; every action goes through `daemon.app.actions`, with
the logged-in user as the actor, and what it queued is sent through the outbox. Nothing here reads a table
itself, and nothing in `daemon.app` imports this package.
"""

"""The Slack adapter: Events API over HTTP or Socket Mode, answers streamed into threads.

Only translation lives here (Slack event → :class:`core.messages.IncomingMessage`, and
:class:`core.messages.Answer` → mrkdwn messages); knowledge and answers stay in ``core``.
Entry point: ``askdesk serve slack`` → :func:`bots.slack.serve.serve`.
"""

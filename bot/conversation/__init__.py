"""The officials' side of the conversation, independent of any chat platform.

Adapters turn platform updates into :class:`~bot.conversation.events.Inbound` events and
deliver the :class:`~bot.conversation.events.Outcome` that
:class:`~bot.conversation.service.Conversation` returns; python-telegram-bot is never
imported here.
"""

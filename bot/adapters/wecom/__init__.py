"""WeCom (企业微信) and the government platforms built on it (政务微信): a self-built app.

- :mod:`.api` -- the server API over httpx (access token, calls, media);
- :mod:`.render` -- template cards with buttons, markdown where a card does not fit;
- :mod:`.adapter` -- the send side: error mapping and pacing to WeCom's documented limits;
- :mod:`.crypto` and :mod:`.callback` -- the callback URL: signature, AES, replays;
- :mod:`.app` -- the frontend ``dutybot run`` builds (bot.adapters registry);
- :mod:`.directory` -- binding by the userid or mobile a schedule declares.
"""

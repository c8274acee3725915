"""The one ASGI app (FastAPI under uvicorn): console pages, webhooks and callbacks,
/healthz, /metrics, calendar feeds and one-tap action pages -- all calling the same domain
functions as chat and CLI (bot.replies), recording channel ``web``."""

"""DingTalk (钉钉): an enterprise internal app with a robot, in Stream mode (one folder per
channel): ``frontend`` (the registry's entry point, receive loop, replies), ``stream`` (the
official SDK's websocket), ``adapter`` and ``render`` (send side), ``openapi`` (HTTP, token,
error mapping), ``directory`` (binding without invites)."""

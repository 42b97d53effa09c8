"""The engine's web pages: server-rendered (Jinja2) on the API's own service, in the GOV.UK
Design System's styles, working without JavaScript. `web.site.add_site` mounts them."""

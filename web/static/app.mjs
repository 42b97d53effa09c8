// The pages' one script, loaded as a module (no inline script: the Content-Security-Policy
// allows none). It marks the page as having JavaScript, as GOV.UK Frontend expects, and
// starts its components. Every page works without it.
import { initAll } from "/govuk/govuk-frontend.min.js";

document.body.classList.add("js-enabled", "govuk-frontend-supported");
initAll();

// Loaded before ReDoc on /redoc. ReDoc's sidebar credit always loads Redocly's logo from
// their CDN; on a store network without internet that request can only fail, and it would be
// the one request the documentation makes off the gateway. Image sources naming that logo are
// pointed at the gateway's own icon instead, before the browser starts loading them.
"use strict";

(() => {
  const REMOTE = "https://cdn.redoc.ly/redoc/logo-mini.svg";
  const LOCAL = "/ui/dashboard/favicon.svg";
  const local = (value) => (String(value) === REMOTE ? LOCAL : value);

  const setAttribute = HTMLImageElement.prototype.setAttribute;
  HTMLImageElement.prototype.setAttribute = function (name, value) {
    return setAttribute.call(this, name, String(name).toLowerCase() === "src" ? local(value) : value);
  };
  const src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    ...src,
    set(value) {
      src.set.call(this, local(value));
    },
  });
})();

// early.js: a note page opens its WebSocket at once, while app.js downloads
// and compiles (most of a page open); sync.js adopts the socket and the
// messages that arrived meanwhile. Not when edits of an earlier load of
// this note wait in sessionStorage: they are pushed under their own client.
// Plain ES5, loaded before the bundle (page.html), served as it is.
(function () {
  var m = /^\/n\/([0-9a-f]{32})\/?$/.exec(location.pathname);
  var e;
  try {
    if (!m || !window.WebSocket || sessionStorage.getItem('notes:unsent:' + m[1])) return;
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    var id = btoa(String.fromCharCode.apply(null, b)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    var ws = new WebSocket((location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host +
      '/ws?note=' + m[1] + '&v=1&client=' + id);
    e = { note: m[1], v: 1, client: id, ws: ws, msgs: [], closed: null };
    ws.onmessage = function (ev) { e.msgs.push(ev); };
    ws.onclose = function (ev) { e.closed = ev; };
  } catch (x) { return; }
  window.__notesEarly = e;
})();

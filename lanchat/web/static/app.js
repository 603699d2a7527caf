/* lanchat's web client: the same JSON frames as the terminal client, one per WebSocket
 * message at /ws, and the same promises (docs/client.md, lanchat/chat/model.py):
 *
 * - an outbox: every message carries a ref and stays pending until its echo; after a
 *   reconnect (or a reload: the outbox lives in localStorage) it goes again with the same
 *   ref, and the server relays a ref only once;
 * - a resume: the login after the first presents the last welcome's resume token,
 *   last_id and history_id, so the name is kept and only missed messages come;
 * - messages de-duplicated by id (within one history_id), so nothing shows twice;
 * - sends paced by hello.limits (a copy of the server's token bucket), one in flight.
 *
 * Text from the network is only ever put in the page with textContent. */
(function () {
  "use strict";

  var Core = window.LanchatCore;
  var Sha = window.LanchatSha256;
  var VERSION = "4.4.0";
  var MAX_LINES = 1000; // messages kept in storage, so a reload shows the conversation
  var MAX_RETRY_AFTER = 60;
  var ALIVE_EVERY = 3000; // ms between a tab's "still here" marks on its storage slot
  var ALIVE_STALE = 10000; // a slot not marked for this long is free for another tab
  var PROBE_TIMEOUT = 5000; // ms a probe ping may wait for an answer before we reconnect
  var ROOMLESS = ""; // the one room of a server without rooms

  function $(id) {
    return document.getElementById(id);
  }

  function now() {
    return Date.now() / 1000;
  }

  function randomHex(bytes) {
    var data = new Uint8Array(bytes);
    crypto.getRandomValues(data);
    return Sha.toHex(data);
  }

  // ------------------------------------------------------------------ storage
  // Each tab has a slot of localStorage (its name, resume token, ids, outbox and lines);
  // sessionStorage remembers which, so a reload finds its own slot again, while a second
  // tab takes another (two tabs sharing one resume token would push each other out).

  var tabId = sessionStorage.getItem("lanchat.tab") || randomHex(8);
  sessionStorage.setItem("lanchat.tab", tabId);

  function slotIsFree(index) {
    var alive = null;
    try {
      alive = JSON.parse(localStorage.getItem("lanchat.alive." + index) || "null");
    } catch (e) {
      alive = null;
    }
    return !alive || alive.tab === tabId || Date.now() - alive.at > ALIVE_STALE;
  }

  function pickSlot() {
    var mine = sessionStorage.getItem("lanchat.slot");
    if (mine !== null && slotIsFree(mine)) return mine;
    for (var index = 0; ; index++) {
      if (slotIsFree(String(index))) return String(index);
    }
  }

  var slot = pickSlot();
  sessionStorage.setItem("lanchat.slot", slot);

  function markAlive() {
    localStorage.setItem("lanchat.alive." + slot, JSON.stringify({ tab: tabId, at: Date.now() }));
  }

  function loadState() {
    var saved = null;
    try {
      saved = JSON.parse(localStorage.getItem("lanchat.state." + slot) || "null");
    } catch (e) {
      saved = null;
    }
    var state = {
      name: null, // the name of the last welcome
      resume: null,
      lastId: null,
      historyId: null,
      rooms: [], // the rooms we are in, so a new login keeps them
      current: null, // the room shown
      outbox: [], // {ref, text, to, room, ts}
      refPrefix: randomHex(8),
      refCount: 0,
      lines: [], // message frames shown, each with `shown_in`, oldest first
    };
    if (saved && typeof saved === "object") {
      Object.keys(state).forEach(function (key) {
        if (saved[key] !== undefined) state[key] = saved[key];
      });
    }
    // A new page has no link yet: nothing of the outbox is in flight, all goes again.
    state.outbox.forEach(function (out) {
      out.sent = false;
    });
    return state;
  }

  var state = loadState();
  var settings = { sound: localStorage.getItem("lanchat.sound") === "on" };

  var saveTimer = null;

  /* Soon, not at every frame: a busy room would rewrite the stored lines many times a
   * second. What must not be lost (the outbox) is saved at once with save(). */
  function saveSoon() {
    if (saveTimer === null) saveTimer = setTimeout(save, 250);
  }

  function save() {
    clearTimeout(saveTimer);
    saveTimer = null;
    try {
      localStorage.setItem("lanchat.state." + slot, JSON.stringify(state));
    } catch (e) {
      // Storage full or denied: the page goes on; only a reload would lose more.
      state.lines = state.lines.slice(-100);
    }
  }

  // ------------------------------------------------------------------ the session

  var link = {
    ws: null,
    open: false,
    loggedIn: false,
    hello: null,
    attempt: 0, // reconnects since the last welcome
    timer: null, // the pending reconnect
    stopped: null, // why we do not reconnect any more (kicked, banned, ...)
    probe: null, // timer of a probe ping after a wake-up
    pacedUntil: 0,
    pace: null, // the server's {rate, burst}, from hello.limits
    bucket: null,
    flushTimer: null,
  };
  var password = null; // in memory only: a reload asks again
  var roomsEnabled = false;
  var defaultRoom = null;
  var rooms = {}; // room name -> {name, topic, members: [], entries: [], unread, mentioned}
  var away = {}; // name key -> away text
  var seen = {}; // message ids shown (within state.historyId)
  var hiddenUnread = 0;
  var hiddenMention = false;
  var sentHistory = [];
  var recall = -1;
  var baseTitle = "lanchat";

  function room(name) {
    if (!rooms[name]) {
      rooms[name] = { name: name, topic: "", members: [], entries: [], unread: 0, mentioned: false };
    }
    return rooms[name];
  }

  function currentRoom() {
    var name = roomsEnabled ? state.current : ROOMLESS;
    return room(name === null ? ROOMLESS : name);
  }

  function isMe(name) {
    return !!state.name && Core.nameKey(name) === Core.nameKey(state.name);
  }

  // ------------------------------------------------------------------ drawing

  function setStatus(text, offline) {
    var status = $("status");
    status.textContent = text;
    status.classList.toggle("offline", !!offline);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* The text of a message, with http(s) links as links (built from text, never HTML). */
  function textNode(text) {
    var span = el("span", "text");
    Core.linkPieces(text).forEach(function (piece) {
      if (piece.href) {
        var a = el("a", null, piece.text);
        a.href = piece.href;
        a.rel = "noopener noreferrer";
        a.target = "_blank";
        span.appendChild(a);
      } else {
        span.appendChild(document.createTextNode(piece.text));
      }
    });
    return span;
  }

  var colours = {}; // name key -> palette index, given in order of appearance

  /* The colour class of a name: different names get different colours while the palette
   * lasts (as in the terminal client), and a name keeps its colour while the page runs. */
  function colourClass(name) {
    var key = Core.nameKey(name);
    if (colours[key] === undefined) colours[key] = Object.keys(colours).length % Core.PALETTE_SIZE;
    return "c" + colours[key];
  }

  function nameNode(name) {
    return el("span", "from " + colourClass(name), name);
  }

  /* One entry as a line of the log. */
  function lineNode(entry) {
    var line = el("div", "line " + entry.kind);
    var time = el("time", null, Core.clock(entry.ts));
    time.dateTime = new Date(entry.ts * 1000).toISOString();
    line.appendChild(time);
    if (entry.kind === "message" || entry.kind === "action" || entry.kind === "notice") {
      line.classList.add("msg");
      line.dataset.id = String(entry.id);
      if (entry.own) line.classList.add("own");
      if (entry.mention) line.classList.add("mention");
      if (entry.to) {
        line.classList.add("private");
        line.appendChild(el("span", "tag", "[private] "));
      }
      if (entry.kind === "action") {
        line.appendChild(document.createTextNode("* "));
        line.appendChild(nameNode(entry.from));
        line.appendChild(document.createTextNode(" "));
      } else {
        var notice = entry.kind === "notice"; // as IRC clients show one: -bob- text
        if (notice) line.appendChild(document.createTextNode("-"));
        line.appendChild(nameNode(entry.from));
        if (entry.to) {
          line.appendChild(document.createTextNode(" → "));
          line.appendChild(nameNode(entry.to));
        }
        line.appendChild(document.createTextNode(notice ? "- " : ": "));
      }
      line.appendChild(textNode(entry.text));
    } else {
      line.appendChild(el("span", "text", (entry.kind === "error" ? "!! " : "-- ") + entry.text));
    }
    return line;
  }

  /* Appends an entry to the log (with a day line where the day changes), keeping the
   * log at its end if it was there. */
  function drawEntry(entry, previous) {
    var log = $("log");
    var atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    var day = Core.daySeparator(previous ? previous.ts : null, entry.ts, now());
    if (day) log.appendChild(el("div", "day", day));
    log.appendChild(lineNode(entry));
    if (atEnd) log.scrollTop = log.scrollHeight;
  }

  function drawLog() {
    var log = $("log");
    log.textContent = "";
    var entries = currentRoom().entries;
    entries.forEach(function (entry, i) {
      drawEntry(entry, i ? entries[i - 1] : null);
    });
    log.scrollTop = log.scrollHeight;
  }

  function drawPending() {
    var list = $("pending");
    list.textContent = "";
    state.outbox.forEach(function (out) {
      var target = "";
      if (out.to) target = " → " + out.to;
      else if (out.room && out.room !== state.current) target = " (" + out.room + ")";
      list.appendChild(el("li", null, out.text + target));
    });
  }

  function drawOnline() {
    var names = currentRoom().members;
    var list = $("online-list");
    list.textContent = "";
    names.forEach(function (name) {
      var item = el("li", isMe(name) ? "me" : null);
      if (away[Core.nameKey(name)] !== undefined) item.classList.add("away");
      var button = el("button", colourClass(name), name);
      button.type = "button";
      button.title = isMe(name) ? "you" : "send " + name + " a private message";
      button.addEventListener("click", function () {
        if (isMe(name)) return;
        var input = $("message");
        input.value = "/msg " + name + " ";
        input.focus();
      });
      item.appendChild(button);
      list.appendChild(item);
    });
    var heading = link.loggedIn ? "Online" : "Last seen";
    $("online-heading").textContent = heading + " (" + names.length + ")";
    $("online-toggle").textContent = "Online (" + names.length + ")";
  }

  function drawRooms() {
    var nav = $("rooms");
    nav.hidden = !roomsEnabled;
    nav.textContent = "";
    if (!roomsEnabled) return;
    state.rooms.forEach(function (name, i) {
      var r = room(name);
      var label = name + (r.unread ? " (" + r.unread + (r.mentioned ? "!" : "") + ")" : "");
      var button = el("button", r.mentioned ? "mentioned" : null, label);
      button.type = "button";
      button.title = "Alt+" + (i + 1);
      button.setAttribute("aria-current", name === state.current ? "true" : "false");
      button.addEventListener("click", function () {
        showRoom(name);
      });
      nav.appendChild(button);
    });
    var topic = roomsEnabled ? currentRoom().topic : "";
    $("topic").hidden = !topic;
    $("topic").textContent = topic ? "Topic: " + topic : "";
  }

  function drawTitle() {
    document.title = Core.tabTitle(baseTitle, hiddenUnread, hiddenMention);
  }

  function drawAll() {
    drawRooms();
    drawLog();
    drawOnline();
    drawPending();
    drawTitle();
  }

  function showRoom(name) {
    if (!roomsEnabled || state.rooms.indexOf(name) < 0) return;
    state.current = name;
    var r = room(name);
    r.unread = 0;
    r.mentioned = false;
    save();
    drawAll();
  }

  // ------------------------------------------------------------------ entries

  /* Adds a line to a room (the one shown by default) and draws it if that room is shown. */
  function addEntry(entry, roomName) {
    var r = roomName === undefined ? currentRoom() : room(roomName);
    var previous = r.entries.length ? r.entries[r.entries.length - 1] : null;
    r.entries.push(entry);
    if (r === currentRoom()) drawEntry(entry, previous);
    return r;
  }

  function note(kind, text, roomName) {
    addEntry({ kind: kind, text: text, ts: now() }, roomName);
  }

  /* The room a message belongs in: its room; a private one goes where `shownIn` says (the
   * room shown when it came, as IRC clients do). */
  function messageRoom(frame, shownIn) {
    if (!roomsEnabled) return ROOMLESS;
    if (typeof frame.room === "string") return frame.room;
    if (typeof frame.to === "string") return shownIn || state.current || defaultRoom || ROOMLESS;
    return defaultRoom || state.current || ROOMLESS;
  }

  /* Takes a message frame: shows it once (by id), remembers it. Returns the entry shown,
   * or null for one seen before. `quiet`: history, no mention marks. */
  function takeMessage(frame, quiet, shownIn) {
    if (typeof frame.id !== "number" || typeof frame.from !== "string") return null;
    if (typeof frame.text !== "string") return null;
    if (seen[frame.id]) return null;
    seen[frame.id] = true;
    if (state.lastId === null || frame.id > state.lastId) state.lastId = frame.id;
    var said = saidOf(frame);
    var to = typeof frame.to === "string" ? frame.to : null;
    var own = isMe(frame.from);
    var entry = {
      kind: said.kind,
      id: frame.id,
      ts: typeof frame.ts === "number" ? frame.ts : now(),
      from: frame.from,
      to: to,
      text: said.text,
      own: own,
      mention: !own && !quiet && (to !== null || Core.mentions(said.text, state.name)),
    };
    var roomName = messageRoom(frame, shownIn);
    var stored = {};
    Object.keys(frame).forEach(function (key) {
      if (key !== "ref") stored[key] = frame[key];
    });
    stored.shown_in = roomName;
    stored.mention = entry.mention;
    state.lines.push(stored);
    if (state.lines.length > MAX_LINES) state.lines.splice(0, state.lines.length - MAX_LINES);
    var r = addEntry(entry, roomName);
    if (!quiet && !own) arrived(r, entry);
    return entry;
  }

  /* A new message from somebody else: unread counts, title, sound, notification. */
  function arrived(r, entry) {
    if (r !== currentRoom()) {
      r.unread += 1;
      r.mentioned = r.mentioned || entry.mention;
      drawRooms();
    }
    if (document.hidden) {
      hiddenUnread += 1;
      hiddenMention = hiddenMention || entry.mention;
      drawTitle();
    }
    if (entry.mention) {
      if (settings.sound) beep();
      if (document.hidden) notify(entry);
    }
  }

  /* A message frame's kind (a notice (4.4), a /me action or a message) and its text. */
  function saidOf(frame) {
    var text = frame.text;
    if (frame.notice === true) return { kind: "notice", text: text };
    if (text.startsWith(Core.ME_PREFIX) && text.length > Core.ME_PREFIX.length) {
      return { kind: "action", text: text.slice(Core.ME_PREFIX.length) };
    }
    return { kind: "message", text: text };
  }

  /* Rebuilds the conversation from storage after a reload: shown as before, ids seen. */
  function restoreLines() {
    state.lines.forEach(function (frame) {
      seen[frame.id] = true;
      var said = saidOf(frame);
      room(frame.shown_in).entries.push({
        kind: said.kind,
        id: frame.id,
        ts: frame.ts,
        from: frame.from,
        to: typeof frame.to === "string" ? frame.to : null,
        text: said.text,
        own: isMe(frame.from),
        mention: !!frame.mention,
      });
    });
    roomsEnabled = state.rooms.length > 0;
  }

  // ------------------------------------------------------------------ sound, notifications

  var audio = null;

  /* A short two-tone chime made with WebAudio: no sound file needed. */
  function beep() {
    try {
      audio = audio || new AudioContext();
      var start = audio.currentTime;
      [880, 1320].forEach(function (pitch, i) {
        var osc = audio.createOscillator();
        var gain = audio.createGain();
        osc.frequency.value = pitch;
        gain.gain.setValueAtTime(0.12, start + i * 0.12);
        gain.gain.exponentialRampToValueAtTime(0.001, start + i * 0.12 + 0.2);
        osc.connect(gain).connect(audio.destination);
        osc.start(start + i * 0.12);
        osc.stop(start + i * 0.12 + 0.2);
      });
    } catch (e) {
      // No audio here: the sound is only a nicety.
    }
  }

  /* Desktop notifications exist only in secure contexts (localhost, https). */
  function notificationsPossible() {
    return window.isSecureContext && "Notification" in window;
  }

  function notify(entry) {
    if (!notificationsPossible() || Notification.permission !== "granted") return;
    var title = entry.to ? entry.from + " (private)" : entry.from;
    try {
      new Notification(title, { body: entry.text, tag: "lanchat" });
    } catch (e) {
      // Some browsers allow notifications only from a service worker: go without.
    }
  }

  // ------------------------------------------------------------------ the link

  function wsUrl() {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  }

  function send(frame) {
    if (!link.ws || !link.open) return false;
    link.ws.send(JSON.stringify(frame));
    return true;
  }

  function connect() {
    if (link.stopped) return;
    clearTimeout(link.timer);
    link.timer = null;
    if (link.ws) return;
    setStatus(link.attempt ? "reconnecting…" : "connecting…", !!link.attempt);
    var ws;
    try {
      ws = new WebSocket(wsUrl());
    } catch (e) {
      scheduleReconnect();
      return;
    }
    link.ws = ws;
    ws.onopen = function () {
      if (link.ws === ws) link.open = true;
    };
    ws.onmessage = function (event) {
      if (link.ws !== ws) return;
      clearTimeout(link.probe);
      link.probe = null;
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (frame && typeof frame === "object" && typeof frame.type === "string") onFrame(frame);
    };
    ws.onclose = function () {
      if (link.ws === ws) disconnected();
    };
  }

  function disconnected() {
    var wasIn = link.loggedIn;
    link.ws = null;
    link.open = false;
    link.loggedIn = false;
    clearTimeout(link.probe);
    link.probe = null;
    state.outbox.forEach(function (out) {
      out.sent = false;
    });
    if (wasIn) note("system", "connection lost; reconnecting");
    drawOnline();
    if (link.stopped) return;
    scheduleReconnect();
  }

  function scheduleReconnect() {
    link.ws = null;
    link.open = false;
    var delay = Core.backoff(link.attempt, Math.random());
    link.attempt += 1;
    var pending = state.outbox.length ? " (" + state.outbox.length + " pending)" : "";
    setStatus("offline, reconnecting in " + Math.ceil(delay) + " s" + pending, true);
    clearTimeout(link.timer);
    link.timer = setTimeout(connect, delay * 1000);
  }

  /* At once, not after the backoff: the network is back, or the page is seen again. */
  function reconnectNow(why) {
    if (link.stopped) return;
    if (!link.ws) {
      link.attempt = 0;
      setStatus(why + ": reconnecting…", true);
      connect();
    } else if (link.open && link.loggedIn && !link.probe) {
      // The socket may be dead without knowing it (a phone that slept): a ping tells.
      send({ type: "ping", token: "probe" });
      link.probe = setTimeout(function () {
        link.probe = null;
        if (link.ws) link.ws.close();
        disconnected();
      }, PROBE_TIMEOUT);
    }
  }

  // ------------------------------------------------------------------ frames

  var handlers = {};

  function onFrame(frame) {
    var handler = handlers[frame.type];
    if (handler) handler(frame);
    saveSoon();
  }

  handlers.hello = function (frame) {
    link.hello = frame;
    var major = String(frame.version || "").split(".")[0];
    if (frame.app !== "lanchat" || major !== "4") {
      stop("this server speaks lanchat " + frame.version + "; this page speaks " + VERSION);
      return;
    }
    if (typeof frame.server === "string" && frame.server) {
      $("server-name").textContent = frame.server;
      baseTitle = frame.server + " – lanchat";
      drawTitle();
    }
    link.pace = Core.announcedPace(frame.limits);
    var needPassword = frame.auth === "password" && password === null;
    var name = pendingName || state.name;
    if (name && !needPassword) {
      login(name);
    } else {
      askName(null, needPassword); // a new link (after a login timeout, say): same form
    }
  };

  function login(name) {
    var frame = { type: "login", name: name, version: VERSION, rooms: state.rooms.slice() };
    var hello = link.hello || {};
    if (hello.auth === "password") {
      var proof = Sha.passwordProof(password || "", hello.nonce, name);
      if (proof === null) {
        stop("the server sent a bad nonce");
        return;
      }
      frame.auth = proof;
    }
    // After a first login: take the name back and get only what we missed.
    if (state.resume && state.name && Core.nameKey(name) === Core.nameKey(state.name)) {
      frame.resume = state.resume;
      if (state.historyId !== null && state.lastId !== null) {
        frame.last_id = state.lastId;
        frame.history_id = state.historyId;
      }
    }
    setStatus("logging in as " + name + "…");
    send(frame);
  }

  /* Shows the login form: `problem` says why (a refused name), a password field if needed. */
  function askName(problem, needPassword) {
    $("login-form").hidden = false;
    $("chat").hidden = !state.lines.length && !state.outbox.length;
    if (problem !== null) $("login-problem").textContent = problem;
    $("password-row").hidden = !needPassword;
    $("password").required = !!needPassword;
    var nameInput = $("name");
    if (!nameInput.value && state.name) nameInput.value = state.name;
    setStatus(needPassword ? "this server wants a password" : "choose a name");
    (needPassword && nameInput.value ? $("password") : nameInput).focus();
  }

  function stop(why) {
    link.stopped = why;
    clearTimeout(link.timer);
    note("error", why);
    setStatus(why, true);
    if (link.ws) link.ws.close();
  }

  handlers.welcome = function (frame) {
    link.loggedIn = true;
    link.attempt = 0;
    pendingName = null;
    var first = !state.resume;
    state.name = typeof frame.name === "string" ? frame.name : state.name;
    state.resume = typeof frame.resume === "string" ? frame.resume : null;
    var historyId = typeof frame.history_id === "string" ? frame.history_id : null;
    if (historyId !== state.historyId) {
      if (state.historyId !== null && historyId !== null) note("system", "the server's history was reset");
      seen = {}; // ids of another history mean nothing here
      state.lines = []; // nor do the stored lines: a reload must not take them as seen
      state.lastId = historyId === null ? null : 0;
      state.historyId = historyId;
    }
    roomsEnabled = Array.isArray(frame.rooms);
    if (roomsEnabled) {
      defaultRoom = typeof frame.default_room === "string" ? frame.default_room : frame.rooms[0];
      state.rooms = frame.rooms.filter(function (r) {
        return typeof r === "string";
      });
      if (state.rooms.indexOf(state.current) < 0) state.current = state.rooms[0] || defaultRoom;
    } else {
      state.rooms = [];
      state.current = null;
    }
    // With rooms, each room's members come in its `joined`.
    if (!roomsEnabled) room(ROOMLESS).members = Array.isArray(frame.online) ? frame.online.slice() : [];
    away = {};
    if (frame.away && typeof frame.away === "object") {
      Object.keys(frame.away).forEach(function (name) {
        away[Core.nameKey(name)] = String(frame.away[name]);
      });
    }
    $("login-form").hidden = true;
    $("chat").hidden = false;
    $("name").value = state.name;
    if (frame.truncated === true) note("system", "some messages were skipped: too many to show");
    (Array.isArray(frame.history) ? frame.history : []).forEach(function (m) {
      takeMessage(m, true);
    });
    var where = link.hello && link.hello.server ? link.hello.server : "the server";
    if (first) note("system", "you are " + state.name + " on " + where + "; /help lists commands");
    else note("system", "back online as " + state.name);
    if (typeof frame.motd === "string" && frame.motd) note("system", frame.motd);
    setStatus("connected as " + state.name);
    drawAll();
    $("message").focus();
    // A fresh login: the server's bucket is full again, and so is our copy of it.
    link.bucket = link.pace ? new Core.TokenBucket(link.pace.rate, link.pace.burst, now()) : null;
    link.pacedUntil = 0;
    flush();
  };

  handlers.joined = function (frame) {
    if (typeof frame.room !== "string") return;
    var r = room(frame.room);
    r.topic = typeof frame.topic === "string" ? frame.topic : "";
    r.members = Array.isArray(frame.members) ? frame.members.slice() : [];
    if (state.rooms.indexOf(frame.room) < 0) state.rooms.push(frame.room);
    (Array.isArray(frame.history) ? frame.history : []).forEach(function (m) {
      takeMessage(m, true);
    });
    if (frame.ref !== undefined && frame.ref === joining) {
      joining = null;
      state.current = frame.room;
      note("system", "you joined " + frame.room + " (" + r.members.length + " here)", frame.room);
    }
    drawAll();
  };

  /* `name` if it is a room we are in (a line about it goes there), else undefined (the
   * line goes to the room shown). */
  function ownRoom(name) {
    return typeof name === "string" && state.rooms.indexOf(name) >= 0 ? name : undefined;
  }

  handlers.parted = function (frame) {
    var at = state.rooms.indexOf(frame.room);
    if (at < 0) return;
    state.rooms.splice(at, 1);
    delete rooms[frame.room];
    if (state.current === frame.room) state.current = state.rooms[0] || null;
    note("system", "you left " + frame.room);
    drawAll();
  };

  handlers.message = function (frame) {
    var out = findOut(frame.ref);
    if (out) {
      state.outbox.splice(state.outbox.indexOf(out), 1);
      drawPending();
    }
    takeMessage(frame, false);
    if (out) flush();
  };

  function presenceRoom(frame) {
    return roomsEnabled ? (typeof frame.room === "string" ? frame.room : defaultRoom) : ROOMLESS;
  }

  function addName(list, name) {
    var key = Core.nameKey(name);
    if (!list.some(function (n) { return Core.nameKey(n) === key; })) list.push(name);
  }

  function removeName(list, name) {
    var key = Core.nameKey(name);
    for (var i = list.length - 1; i >= 0; i--) if (Core.nameKey(list[i]) === key) list.splice(i, 1);
  }

  handlers.join = function (frame) {
    if (typeof frame.name !== "string") return;
    var where = presenceRoom(frame);
    addName(room(where).members, frame.name);
    note("presence", frame.name + " joined" + (roomsEnabled ? " " + where : ""), where);
    drawOnline();
  };

  handlers.leave = function (frame) {
    if (typeof frame.name !== "string") return;
    var where = presenceRoom(frame);
    removeName(room(where).members, frame.name);
    var why = frame.reason === "part" ? "left " + where : "left (" + (frame.reason || "quit") + ")";
    note("presence", frame.name + " " + why, where);
    drawOnline();
  };

  handlers.nick = function (frame) {
    if (typeof frame.old !== "string" || typeof frame.new !== "string") return;
    if (isMe(frame.old)) state.name = frame.new;
    var key = Core.nameKey(frame.old);
    Object.keys(rooms).forEach(function (name) {
      var members = rooms[name].members;
      for (var i = 0; i < members.length; i++) if (Core.nameKey(members[i]) === key) members[i] = frame.new;
    });
    note("presence", frame.old + " is now " + frame.new);
    drawOnline();
  };

  handlers.away = function (frame) {
    if (typeof frame.name !== "string") return;
    var key = Core.nameKey(frame.name);
    if (typeof frame.text === "string") {
      away[key] = frame.text;
      note("presence", frame.name + " is away: " + frame.text);
    } else {
      delete away[key];
      if (!frame.reply) note("presence", frame.name + " is back");
    }
    drawOnline();
  };

  handlers.topic = function (frame) {
    if (typeof frame.room !== "string") return;
    var text = typeof frame.text === "string" ? frame.text : "";
    if (rooms[frame.room]) rooms[frame.room].topic = text;
    var by = typeof frame.by === "string" ? " (set by " + frame.by + ")" : "";
    note("system", "topic of " + frame.room + ": " + (text || "(none)") + by, ownRoom(frame.room));
    drawRooms();
  };

  handlers.online = function (frame) {
    var names = Array.isArray(frame.names) ? frame.names : [];
    var where = typeof frame.room === "string" ? " in " + frame.room : "";
    note("system", "online" + where + " (" + names.length + "): " + names.join(", "));
    if (!roomsEnabled) {
      room(ROOMLESS).members = names.slice();
      drawOnline();
    }
  };

  handlers.room_list = function (frame) {
    var list = Array.isArray(frame.rooms) ? frame.rooms : [];
    note("system", "rooms (" + list.length + "):");
    list.forEach(function (r) {
      if (r && typeof r.room === "string") {
        note("system", "  " + r.room + " (" + r.members + ")" + (r.topic ? ": " + r.topic : ""));
      }
    });
  };

  handlers.notice = function (frame) {
    if (typeof frame.text !== "string") return;
    note("system", frame.text, ownRoom(frame.room));
  };

  handlers.whois = function (frame) {
    var parts = [frame.name];
    if (typeof frame.away === "string") parts.push("away: " + frame.away);
    if (Array.isArray(frame.rooms)) parts.push("in " + frame.rooms.join(" "));
    if (typeof frame.fingerprint === "string") parts.push("key " + frame.fingerprint);
    note("system", parts.join("; "));
  };

  handlers.ping = function (frame) {
    var pong = { type: "pong" };
    if (frame.token !== undefined) pong.token = frame.token;
    send(pong);
  };

  handlers.shutdown = function (frame) {
    var why = typeof frame.message === "string" ? ": " + frame.message : "";
    note("system", "the server is shutting down" + why);
  };

  var NAME_REFUSALS = ["name_taken", "invalid_name", "name_registered", "name_reclaimed"];
  // Refusals after which the page does not come back by itself.
  var FINAL = {
    kicked: "you were kicked",
    banned: "you are banned",
    incompatible_version: "the server refused this page's version",
    bad_identity: "the server refused us",
  };

  handlers.error = function (frame) {
    var code = frame.code;
    var text = typeof frame.message === "string" ? frame.message : String(code);
    var out = findOut(frame.ref);
    if (NAME_REFUSALS.indexOf(code) >= 0 && (!link.loggedIn || code === "name_reclaimed")) {
      var tried = pendingName || state.name || "";
      pendingName = null;
      var suggestion = Core.suggestName(tried);
      if (code === "name_reclaimed") {
        state.resume = null;
        state.name = null;
      }
      $("name").value = suggestion || tried;
      var needPassword = !!link.hello && link.hello.auth === "password" && password === null;
      askName(text + (suggestion ? " Try " + suggestion + "?" : ""), needPassword);
      return;
    }
    if (FINAL[code]) {
      var by = typeof frame.by === "string" ? " by " + frame.by : "";
      var reason = typeof frame.reason === "string" && frame.reason ? ": " + frame.reason : "";
      stop(FINAL[code] + by + reason + " (" + text + ")");
      return;
    }
    if (code === "auth_failed") {
      password = null;
      askName("Wrong password: " + text, true);
      return;
    }
    if (code === "rate_limited") {
      var wait = typeof frame.retry_after === "number" && frame.retry_after > 0 ? frame.retry_after : 1;
      link.pacedUntil = now() + Math.min(wait, MAX_RETRY_AFTER);
      if (out) {
        out.sent = false; // it goes again, before any later one
        flush();
        return;
      }
    }
    if (out) {
      state.outbox.splice(state.outbox.indexOf(out), 1);
      var target = out.to || out.room;
      var to = target ? " to " + target : "";
      note("error", "not sent" + to + ": " + text + " (" + out.text.slice(0, 40) + ")");
      drawPending();
      flush();
      return;
    }
    if (frame.ref !== undefined && frame.ref === joining) joining = null;
    if (code === "server_full" || code === "too_many_connections" || code === "timeout") {
      note("error", "server: " + text);
      return; // the server closes; the backoff tries again
    }
    note("error", (typeof frame.room === "string" ? frame.room + ": " : "server: ") + text);
  };

  // ------------------------------------------------------------------ the outbox

  var pendingName = null;
  var joining = null; // the ref of the /join the server has not answered yet

  function findOut(ref) {
    if (ref === undefined || ref === null) return null;
    for (var i = 0; i < state.outbox.length; i++) if (state.outbox[i].ref === ref) return state.outbox[i];
    return null;
  }

  function newRef() {
    state.refCount += 1;
    return state.refPrefix + "-" + state.refCount;
  }

  /* Sends the oldest pending message when nothing is in flight and the pace allows. */
  function flush() {
    clearTimeout(link.flushTimer);
    link.flushTimer = null;
    if (!link.loggedIn || !link.open || !state.outbox.length) return;
    var head = state.outbox[0];
    if (head.sent) return;
    var t = now();
    var wait = link.pacedUntil - t;
    if (wait <= 0 && link.bucket) wait = link.bucket.take(t);
    if (wait > 0) {
      link.pacedUntil = t + wait;
      link.flushTimer = setTimeout(flush, wait * 1000 + 5);
      return;
    }
    var frame = { type: "say", text: head.text, ref: head.ref };
    if (head.to) frame.to = head.to;
    else if (head.room && roomsEnabled) frame.room = head.room;
    head.sent = true;
    send(frame);
  }

  function queue(text, to) {
    var where = !to && roomsEnabled ? state.current : null; // the room it was typed in
    state.outbox.push({ ref: newRef(), text: text, to: to || null, room: where, ts: now(), sent: false });
    save();
    drawPending();
    flush();
  }

  // ------------------------------------------------------------------ commands

  var HELP = [
    "/msg NAME text: a private message (or click a name in the online list)",
    "/me text: an action, shown as * you text",
    "/who [#room]: who is here (or in that room)",
    "/join #room, /part [#room], /rooms, /topic [#room] [text]: rooms, when the server has them",
    "/clear: empty the message list (only yours); //text sends a line starting with /",
    "keys: Enter sends, Up/Down recall earlier lines, Alt+1...9 show a room, Esc back to the newest",
  ];

  function request(frame) {
    if (!link.loggedIn) {
      note("error", "offline: try again once connected");
      return;
    }
    send(frame);
  }

  function needRooms() {
    if (!roomsEnabled) note("error", "this server has no rooms");
    return roomsEnabled;
  }

  function submitLine(line) {
    if (!line.trim()) return;
    sentHistory.push(line);
    recall = -1;
    var command = Core.parseCommand(line, roomsEnabled ? state.current : null);
    switch (command.kind) {
      case "say":
      case "me":
        queue(command.text, null);
        break;
      case "msg":
        queue(command.text, command.to);
        break;
      case "who":
        request(roomsEnabled && command.room ? { type: "who", room: command.room } : { type: "who" });
        break;
      case "join":
        if (!needRooms()) break;
        if (state.rooms.indexOf(command.room) >= 0) {
          showRoom(command.room);
          break;
        }
        joining = newRef();
        request({ type: "join", room: command.room, ref: joining });
        break;
      case "part":
        if (needRooms()) request({ type: "part", room: command.room, ref: newRef() });
        break;
      case "topic":
        if (!needRooms()) break;
        var topic = { type: "topic", room: command.room };
        if (command.text !== null) topic.text = command.text; // without text: ask
        request(topic);
        break;
      case "rooms":
        if (needRooms()) request({ type: "rooms" });
        break;
      case "help":
        HELP.forEach(function (text) {
          note("system", text);
        });
        break;
      case "clear":
        currentRoom().entries = [];
        drawLog();
        break;
      case "quit":
        request({ type: "quit" });
        stop("you left; reload the page to come back");
        state.resume = null;
        break;
      case "usage":
        note("error", "usage: " + command.command);
        break;
      default:
        note("error", "unknown command " + command.command + "; /help lists them (//text sends it as text)");
    }
    save();
  }

  // ------------------------------------------------------------------ the page's events

  function onLogin(event) {
    event.preventDefault();
    var name = $("name").value.trim();
    if (!name) return;
    if (!$("password-row").hidden) password = $("password").value;
    $("password").value = "";
    pendingName = name;
    if (link.loggedIn) return;
    if (!link.open) {
      reconnectNow("joining");
      return;
    }
    if (state.name && Core.nameKey(state.name) !== Core.nameKey(name)) {
      // Another name: a new session (its resume token belongs to the old name).
      state.resume = null;
    }
    login(name);
  }

  function onSend(event) {
    event.preventDefault();
    var input = $("message");
    var line = input.value;
    input.value = "";
    submitLine(line);
  }

  function onMessageKey(event) {
    var input = $("message");
    if (event.key === "ArrowUp" && sentHistory.length) {
      recall = recall < 0 ? sentHistory.length - 1 : Math.max(0, recall - 1);
      input.value = sentHistory[recall];
      event.preventDefault();
    } else if (event.key === "ArrowDown" && recall >= 0) {
      recall += 1;
      input.value = recall < sentHistory.length ? sentHistory[recall] : "";
      if (recall >= sentHistory.length) recall = -1;
      event.preventDefault();
    } else if (event.key === "Escape") {
      $("log").scrollTop = $("log").scrollHeight;
    }
  }

  function onGlobalKey(event) {
    if (event.altKey && /^[1-9]$/.test(event.key)) {
      var name = state.rooms[parseInt(event.key, 10) - 1];
      if (name) {
        showRoom(name);
        event.preventDefault();
      }
    }
  }

  function onVisible() {
    if (document.hidden) return;
    hiddenUnread = 0;
    hiddenMention = false;
    drawTitle();
    reconnectNow("back");
  }

  function toggleOnline() {
    var open = !$("online").classList.contains("open");
    $("online").classList.toggle("open", open);
    $("online-toggle").setAttribute("aria-expanded", String(open));
  }

  function setUp() {
    markAlive();
    setInterval(markAlive, ALIVE_EVERY);
    restoreLines();
    if (state.lines.length || state.outbox.length) $("chat").hidden = false;
    drawAll();
    $("login-form").addEventListener("submit", onLogin);
    $("send-form").addEventListener("submit", onSend);
    $("message").addEventListener("keydown", onMessageKey);
    document.addEventListener("keydown", onGlobalKey);
    document.addEventListener("visibilitychange", onVisible);
    window.addEventListener("pagehide", save);
    window.addEventListener("online", function () {
      reconnectNow("network back");
    });
    window.addEventListener("offline", function () {
      setStatus("offline (no network)", true);
    });
    $("online-toggle").addEventListener("click", toggleOnline);
    var sound = $("sound");
    sound.checked = settings.sound;
    sound.addEventListener("change", function () {
      settings.sound = sound.checked;
      localStorage.setItem("lanchat.sound", sound.checked ? "on" : "off");
      if (sound.checked) beep(); // also unlocks audio: browsers need a click first
    });
    if (notificationsPossible() && Notification.permission !== "granted") {
      var button = $("notify");
      button.hidden = false;
      button.addEventListener("click", function () {
        Notification.requestPermission().then(function () {
          button.hidden = Notification.permission === "granted";
        });
      });
    }
    connect();
  }

  setUp();
})();

/* The page's pure functions: no DOM, no network, no clock of their own (times are
 * passed in), so the tests run them in a blank page. Exposed as window.LanchatCore. */
(function (global) {
  "use strict";

  var MAX_NAME = 24;
  var ME_PREFIX = "/me ";
  var PALETTE_SIZE = 6; // sender colours: .c0 ... .c5 in style.css

  /* A name to offer when `name` was refused (cf. suggest_name in lanchat/chat/model.py):
   * spaces become "_", characters a name may not hold go, and a name that was fine gets a
   * number (bob -> bob2, bob2 -> bob3). "" when nothing usable is left. */
  function suggestName(name) {
    var candidate = String(name).trim().replace(/\s+/g, "_");
    candidate = candidate.replace(/[^\p{L}\p{M}\p{N}_.\-]/gu, "");
    if (!/[\p{L}\p{N}]/u.test(candidate)) return "";
    if (candidate !== name && Array.from(candidate).length <= MAX_NAME) return candidate;
    var match = /(\d+)$/.exec(candidate);
    var stem = match ? candidate.slice(0, match.index) : candidate;
    var suffix = String(match ? parseInt(match[1], 10) + 1 : 2);
    return Array.from(stem).slice(0, MAX_NAME - suffix.length).join("") + suffix;
  }

  /* The key two names are compared by (the server's is the NFKC case fold). */
  function nameKey(name) {
    return String(name).normalize("NFKC").toLowerCase();
  }

  /* The local day of a time in Unix seconds, as "YYYY-MM-DD": what day separators compare. */
  function dayKey(ts) {
    var d = new Date(ts * 1000);
    return d.getFullYear() + "-" + (d.getMonth() + 1) + "-" + d.getDate();
  }

  var WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
  var MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December"];

  /* The day separator's text, as the terminal client's: "Saturday 28 November", with the
   * year when it is not the year of `nowTs`. */
  function dayLabel(ts, nowTs) {
    var d = new Date(ts * 1000);
    var label = WEEKDAYS[d.getDay()] + " " + d.getDate() + " " + MONTHS[d.getMonth()];
    if (d.getFullYear() !== new Date(nowTs * 1000).getFullYear()) label += " " + d.getFullYear();
    return label;
  }

  /* The separator to put before a line of time `ts` after a line of time `previousTs`
   * (null: the first line): a label where the day changes, and before the first line
   * unless it is from today; else null. */
  function daySeparator(previousTs, ts, nowTs) {
    if (previousTs === null) {
      return dayKey(ts) === dayKey(nowTs) ? null : dayLabel(ts, nowTs);
    }
    return dayKey(previousTs) === dayKey(ts) ? null : dayLabel(ts, nowTs);
  }

  /* "HH:MM", local time. */
  function clock(ts) {
    var d = new Date(ts * 1000);
    return (d.getHours() < 10 ? "0" : "") + d.getHours() + ":" +
      (d.getMinutes() < 10 ? "0" : "") + d.getMinutes();
  }

  function escapeRegExp(text) {
    return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }

  /* True if `text` names `me` as a whole word (any case). */
  function mentions(text, me) {
    if (!me) return false;
    var pattern = new RegExp("(^|[^\\p{L}\\p{N}_])" + escapeRegExp(me) + "(?![\\p{L}\\p{N}_])", "iu");
    return pattern.test(text);
  }

  /* Splits a text into pieces {text, href}: href is set only for http:// and https://
   * links (nothing else, javascript: least of all, is ever a link). */
  function linkPieces(text) {
    var pieces = [];
    var pattern = /https?:\/\/[^\s<>"']+/gi;
    var last = 0;
    var match;
    while ((match = pattern.exec(text)) !== null) {
      var url = match[0].replace(/[.,;:!?)\]]+$/, "");
      if (match.index > last) pieces.push({ text: text.slice(last, match.index), href: null });
      pieces.push({ text: url, href: url });
      last = match.index + url.length;
      pattern.lastIndex = last;
    }
    if (last < text.length) pieces.push({ text: text.slice(last), href: null });
    return pieces;
  }

  /* What a typed line asks for: {kind, ...}. kind is "say" (text), "me" (text), "msg"
   * (to, text), "who" (room), "join"/"part" (room), "topic" (room, text: null to ask),
   * "rooms", "help", "clear", "quit", "unknown" (command) or "usage" (command). `current`
   * is the room shown (null without rooms). */
  function parseCommand(line, current) {
    if (line.startsWith("//")) return { kind: "say", text: line.slice(1) };
    if (!line.startsWith("/")) return { kind: "say", text: line };
    var space = line.search(/\s/);
    var command = (space < 0 ? line : line.slice(0, space)).toLowerCase();
    var rest = space < 0 ? "" : line.slice(space + 1).trim();
    var words = rest ? rest.split(/\s+/) : [];
    switch (command) {
      case "/me":
        return rest ? { kind: "me", text: ME_PREFIX + rest } : { kind: "usage", command: "/me text" };
      case "/msg": {
        if (words.length < 2) return { kind: "usage", command: "/msg NAME text" };
        var text = rest.slice(words[0].length).trim();
        return { kind: "msg", to: words[0], text: text };
      }
      case "/who":
        return { kind: "who", room: words[0] ? roomName(words[0]) : current };
      case "/join":
        if (!words[0]) return { kind: "usage", command: "/join #room" };
        return { kind: "join", room: roomName(words[0]) };
      case "/part":
        return { kind: "part", room: words[0] ? roomName(words[0]) : current };
      case "/topic": {
        var room = current;
        var topic = rest;
        if (words[0] && words[0].startsWith("#")) {
          room = words[0];
          topic = rest.slice(words[0].length).trim();
        }
        return { kind: "topic", room: room, text: topic ? topic : null };
      }
      case "/rooms":
      case "/help":
      case "/clear":
      case "/quit":
        return { kind: command.slice(1) };
      default:
        return { kind: "unknown", command: command };
    }
  }

  /* "#dev" for "dev" or "#dev", as /join dev means #dev. */
  function roomName(word) {
    return word.startsWith("#") ? word : "#" + word;
  }

  /* The tab title: "(3) lanchat", "(3!) lanchat" with a mention, or just the base. */
  function tabTitle(base, unread, mentioned) {
    if (!unread) return base;
    return "(" + unread + (mentioned ? "!" : "") + ") " + base;
  }

  /* The delay before reconnect attempt number `attempt` (0, 1, ...): 0.5 s doubling up to
   * 15 s, with `jitter` (0..1) spreading it by up to a quarter, so a room of browsers that
   * lost one server do not all come back in the same millisecond. */
  function backoff(attempt, jitter) {
    var base = Math.min(15, 0.5 * Math.pow(2, attempt));
    return base * (1 - 0.25 * jitter);
  }

  /* The server's (rate, burst) from hello.limits, or null (cf. announced_pace in
   * lanchat/chat/outbox.py). */
  function announcedPace(limits) {
    if (!limits || typeof limits !== "object") return null;
    var rate = limits.rate;
    var burst = limits.burst;
    if (typeof rate !== "number" || !(rate > 0)) return null;
    if (typeof burst !== "number" || !Number.isInteger(burst) || burst < 1) return null;
    return { rate: rate, burst: burst };
  }

  /* A copy of the server's token bucket (one frame of the burst kept spare), so the page
   * need not be refused: take(now) spends a token and returns 0, or returns the seconds
   * until one is there. */
  function TokenBucket(rate, burst, now) {
    this.rate = rate;
    this.capacity = Math.max(1, burst - 1);
    this.tokens = this.capacity;
    this.at = now;
  }
  TokenBucket.prototype.take = function (now) {
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.at) * this.rate);
    this.at = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return (1 - this.tokens) / this.rate;
  };

  global.LanchatCore = {
    MAX_NAME: MAX_NAME,
    ME_PREFIX: ME_PREFIX,
    suggestName: suggestName,
    nameKey: nameKey,
    dayKey: dayKey,
    dayLabel: dayLabel,
    daySeparator: daySeparator,
    clock: clock,
    PALETTE_SIZE: PALETTE_SIZE,
    mentions: mentions,
    linkPieces: linkPieces,
    parseCommand: parseCommand,
    roomName: roomName,
    tabTitle: tabTitle,
    backoff: backoff,
    announcedPace: announcedPace,
    TokenBucket: TokenBucket,
  };
})(typeof window !== "undefined" ? window : this);

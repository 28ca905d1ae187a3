/* ScaiWave calls app: one page over the public API (docs/app.md).
 *
 * Sign-in gives a user token; everything after goes through /v1 and /api with it, like any client:
 * document 000 for calls, the /v1/events WebSocket for ringing, livekit-client for media,
 * document 002 for uploaded-call analysis and document 003 for live calls.
 */
(function () {
  "use strict";

  const CONFIG = JSON.parse(document.getElementById("scaiwave-config").textContent);
  const TOKEN_KEY = "scaiwave.app.session";
  const $ = (id) => document.getElementById(id);

  const state = {
    session: null, // {token, user_id, name}
    rooms: [],
    roomId: null,
    ring: null, // {callId, roomId, deadline, timer, from}
    lastRing: null,
    call: null, // {id, roomId, type, initiatorId, lk, live}
    events: null,
    eventsBackoff: 1000,
    subscribedRooms: new Set(),
    analysisTimer: null,
  };

  // --- Errors people understand --------------------------------------------------------------

  class AppError extends Error {
    constructor(message, status, code) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function explain(status, problem) {
    const code = (problem && (problem.code || problem.error)) || "";
    const detail = (problem && (problem.detail || problem.message)) || "";
    if (status === 401) return "Your session has ended. Please sign in again.";
    if (code === "SW_CALL_ALREADY_ACTIVE") return "A call is already going on in this room. Join it instead.";
    if (code === "SW_CALL_ENDED") return "That call has already ended.";
    if (code === "SW_CALL_NOT_FOUND") return "That call no longer exists.";
    if (code === "SW_CALL_RECORDING_DISABLED") return "Recording is turned off for your organisation.";
    if (code === "SW_CALL_LIVEKIT_UNREACHABLE" || status === 502)
      return "The media server can't be reached right now. Please try again in a moment.";
    if (status === 503) return "This service is not available on this server right now.";
    if (status === 413) return "That file is too large.";
    if (status === 415) return "That file type isn't supported. Use .m4a, .mp3, .wav, .aac or .ogg.";
    if (status === 429) return "Too many requests. Wait a few seconds and try again.";
    if (status >= 500) return "Something went wrong on the server. Please try again.";
    return detail || "That didn't work. Please try again.";
  }

  async function api(method, path, body, options) {
    const headers = { Accept: "application/json" };
    if (state.session) headers.Authorization = "Bearer " + state.session.token;
    let payload;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    if (options && options.idempotent) headers["Idempotency-Key"] = crypto.randomUUID();
    let response;
    try {
      response = await fetch(path, { method, headers, body: payload, credentials: "omit" });
    } catch (err) {
      throw new AppError("Can't reach ScaiWave. Check your connection and try again.", 0, "network");
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (err) {
      data = text;
    }
    if (!response.ok) {
      if (response.status === 401 && state.session && !(options && options.anonymous)) signOut(true);
      throw new AppError(explain(response.status, data), response.status, data && (data.code || data.error));
    }
    return data;
  }

  function notify(message, kind, extra) {
    const item = document.createElement("div");
    item.className = "notice notice-" + (kind || "info");
    item.setAttribute("role", kind === "error" ? "alert" : "status");
    if (extra && extra.callId) item.dataset.callId = extra.callId;
    if (kind) item.dataset.kind = kind;
    const text = document.createElement("span");
    text.textContent = message;
    item.appendChild(text);
    const close = document.createElement("button");
    close.type = "button";
    close.className = "notice-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "\u00d7";
    close.addEventListener("click", () => item.remove());
    item.appendChild(close);
    $("notices").prepend(item);
    if (kind !== "missed" && kind !== "error") setTimeout(() => item.remove(), 8000);
    return item;
  }

  function showError(elementId, err) {
    $(elementId).textContent = err ? err.message || String(err) : "";
  }

  // --- Small rendering helpers ---------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key.startsWith("data-")) node.setAttribute(key, value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function when(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  function duration(startIso, endIso) {
    if (!startIso || !endIso) return "";
    const seconds = Math.max(0, Math.round((Date.parse(endIso) - Date.parse(startIso)) / 1000));
    const m = Math.floor(seconds / 60);
    const s = seconds % 60;
    return m ? `${m} min ${s} s` : `${s} s`;
  }

  function initials(name) {
    return (name || "?")
      .split(/\s+/)
      .filter(Boolean)
      .slice(0, 2)
      .map((part) => part[0].toUpperCase())
      .join("");
  }

  const STATUS_WORDS = {
    ringing: "Ringing",
    active: "In progress",
    ended: "Ended",
    missed: "Missed",
    rejected: "Declined",
    cancelled: "Cancelled",
    failed: "Failed",
  };

  function memberName(roomId, userId) {
    const room = state.rooms.find((r) => r.id === roomId);
    const member = room && room.members.find((m) => m.user_id === userId);
    return (member && member.name) || userId;
  }

  function setView(name) {
    for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== "view-" + name;
    for (const tab of document.querySelectorAll("[data-tab]")) {
      const current = tab.dataset.tab === name || (name === "summary" && tab.dataset.tab === "rooms");
      if (current) tab.setAttribute("aria-current", "page");
      else tab.removeAttribute("aria-current");
    }
  }

  // --- Sign-in -------------------------------------------------------------------------------

  function takeTokenFromFragment() {
    // Production: the host application opens /app/#token=<user JWT>. The fragment never reaches a server.
    const match = location.hash.match(/(?:^#|&)token=([^&]+)/);
    if (!match) return null;
    const token = decodeURIComponent(match[1]);
    history.replaceState(null, "", location.pathname + "#/rooms");
    try {
      const claims = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
      return { token, user_id: claims.sub, name: claims.name || claims.sub };
    } catch (err) {
      return null;
    }
  }

  function loadSession() {
    const handed = takeTokenFromFragment();
    if (handed) {
      sessionStorage.setItem(TOKEN_KEY, JSON.stringify(handed));
      return handed;
    }
    try {
      return JSON.parse(sessionStorage.getItem(TOKEN_KEY) || "null");
    } catch (err) {
      return null;
    }
  }

  function showSignIn() {
    setView("signin");
    $("nav").hidden = true;
    $("who").hidden = true;
    $("signin-demo").hidden = !CONFIG.demo;
    $("signin-production").hidden = CONFIG.demo;
    if (CONFIG.demo) $("signin-name").focus();
  }

  function signOut(expired) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.session = null;
    if (state.events) {
      state.events.onclose = null;
      state.events.close();
      state.events = null;
    }
    stopRing();
    showSignIn();
    if (expired) notify("Your session has ended. Please sign in again.", "error");
  }

  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("signin-error", null);
    const name = $("signin-name").value.trim();
    if (!name) {
      showError("signin-error", new Error("Please enter your name."));
      $("signin-name").focus();
      return;
    }
    $("signin-submit").disabled = true;
    try {
      const session = await api("POST", "/app/session", { name }, { anonymous: true });
      sessionStorage.setItem(TOKEN_KEY, JSON.stringify(session));
      start(session);
    } catch (err) {
      showError("signin-error", err);
    } finally {
      $("signin-submit").disabled = false;
    }
  });

  $("sign-out").addEventListener("click", () => signOut(false));

  function start(session) {
    state.session = session;
    $("who-name").textContent = session.name;
    $("nav").hidden = false;
    $("who").hidden = false;
    connectEvents();
    route();
  }

  // --- Events WebSocket: ringing and call state ----------------------------------------------

  function setEventsState(text, ok) {
    const dot = $("events-state");
    dot.classList.toggle("ok", ok);
    dot.setAttribute("aria-label", text);
    dot.title = text;
    document.body.dataset.events = ok ? "connected" : "disconnected";
  }

  function connectEvents() {
    if (!state.session) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/v1/events?access_token=${encodeURIComponent(state.session.token)}`;
    const socket = new WebSocket(url);
    state.events = socket;
    setEventsState("Connecting\u2026", false);
    socket.onmessage = (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch (err) {
        return;
      }
      onEvent(frame);
    };
    socket.onopen = () => {
      state.eventsBackoff = 1000;
    };
    socket.onclose = (closed) => {
      setEventsState("Not connected: reconnecting", false);
      state.subscribedRooms.clear();
      if (!state.session) return;
      const wait = state.eventsBackoff;
      state.eventsBackoff = Math.min(wait * 2, 15000);
      setTimeout(() => state.session && state.events === socket && connectEvents(), wait);
    };
  }

  function subscribeRoom(roomId) {
    const socket = state.events;
    if (!socket || socket.readyState !== WebSocket.OPEN || state.subscribedRooms.has(roomId)) return;
    socket.send(JSON.stringify({ action: "subscribe", room_id: roomId }));
    state.subscribedRooms.add(roomId);
  }

  function onEvent(frame) {
    const data = frame.data || {};
    switch (frame.type) {
      case "connected":
        setEventsState("Connected", true);
        if (state.call) subscribeRoom(state.call.roomId);
        break;
      case "swp.call.invite":
        onInvite(frame);
        // A room someone just added us to: learn its members' names.
        if ($("view-rooms").hidden && !state.rooms.some((room) => room.id === data.room_id)) loadRooms();
        break;
      case "swp.call.ringing_cancelled":
        onRingCancelled(data);
        break;
      case "swp.call.missed":
        onMissed(data);
        break;
      case "swp.call.ended":
        onCallEnded(data);
        break;
      case "swp.call.participant_joined":
      case "swp.call.participant_left":
        if (state.call && state.call.id === data.call_id) refreshCallState();
        break;
      case "swp.call.recording_started":
      case "swp.call.recording_stopped":
        if (state.call && state.call.id === data.call_id) setRecording(frame.type.endsWith("started"));
        break;
      case "transcription.segment":
        onCaption(data);
        break;
      default:
        break;
    }
    // The rooms page shows live calls and history: bring it up to date with the call's news.
    const news = frame.type && frame.type.startsWith("swp.call.");
    if (news && !state.call && !$("view-rooms").hidden)
      loadRooms().then(() => state.roomId === data.room_id && loadRoomDetail(state.roomId));
  }

  // --- Ringing ------------------------------------------------------------------------------

  let ringAudio = null;

  function ringtoneStart() {
    // Two-tone ring made with WebAudio: 440 + 480 Hz, 1 s on, 2 s off, until stopped.
    try {
      const context = new (window.AudioContext || window.webkitAudioContext)();
      const gain = context.createGain();
      gain.gain.value = 0;
      gain.connect(context.destination);
      for (const frequency of [440, 480]) {
        const oscillator = context.createOscillator();
        oscillator.frequency.value = frequency;
        oscillator.connect(gain);
        oscillator.start();
      }
      let on = false;
      const beat = () => {
        on = !on;
        gain.gain.setTargetAtTime(on ? 0.12 : 0, context.currentTime, 0.02);
        ringAudio.timer = setTimeout(beat, on ? 1000 : 2000);
      };
      ringAudio = { context, timer: null };
      beat();
      document.body.dataset.ringtone = "playing";
    } catch (err) {
      ringAudio = null;
    }
  }

  function ringtoneStop() {
    if (!ringAudio) return;
    clearTimeout(ringAudio.timer);
    ringAudio.context.close();
    ringAudio = null;
    document.body.dataset.ringtone = "stopped";
  }

  function onInvite(frame) {
    const data = frame.data;
    if (state.call && state.call.id === data.call_id) return;
    stopRing();
    // Count down on this device's clock: the time the server gave, minus what had passed when it sent it.
    const remaining = Date.parse(data.expires_at) - Date.parse(frame.ts || new Date().toISOString());
    const from = data.initiator_name || data.initiator_id;
    state.ring = {
      callId: data.call_id,
      roomId: data.room_id,
      type: data.type,
      from,
      deadline: Date.now() + Math.max(0, remaining),
    };
    $("ring-what").textContent = `Incoming ${data.type === "video" ? "video" : "audio"} call \u00b7 ${data.room_id}`;
    $("ring-caller").textContent = from;
    $("ring").hidden = false;
    $("ring").dataset.callId = data.call_id;
    $("ring").dataset.shownAt = String(Date.now()); // when this device started ringing (tests measure it)
    tickRing();
    state.ring.timer = setInterval(tickRing, 250);
    ringtoneStart();
    state.ring.previousFocus = document.activeElement;
    $("ring-answer").focus();
  }

  function tickRing() {
    if (!state.ring) return;
    const seconds = Math.max(0, Math.ceil((state.ring.deadline - Date.now()) / 1000));
    $("ring-countdown").textContent = seconds ? `Rings for ${seconds} more s` : "No answer";
  }

  function stopRing() {
    if (!state.ring) return null;
    const ring = state.ring;
    clearInterval(ring.timer);
    ringtoneStop();
    $("ring").hidden = true;
    state.ring = null;
    state.lastRing = ring; // swp.call.missed comes after the ring's own cancellation
    if (ring.previousFocus && document.contains(ring.previousFocus)) ring.previousFocus.focus();
    return ring;
  }

  const CANCEL_WORDS = {
    rejected_here: "Declined",
    rejected: "Declined",
    cancelled: "The caller hung up",
    timeout: "Nobody answered",
    failed: "The call failed",
  };

  function onRingCancelled(data) {
    if (!state.ring || state.ring.callId !== data.call_id) return;
    const ring = stopRing();
    if (data.reason === "timeout") return; // swp.call.missed follows and says so
    let words = CANCEL_WORDS[data.reason] || "Call stopped";
    if (data.reason === "answered")
      words =
        data.answered_by === state.session.user_id
          ? "Answered on another device"
          : `Answered by ${memberName(data.room_id, data.answered_by)}`;
    notify(`${words}: call from ${ring.from}`, "info");
  }

  function onMissed(data) {
    if (state.ring && state.ring.callId === data.call_id) stopRing();
    const ring = state.lastRing && state.lastRing.callId === data.call_id ? state.lastRing : null;
    const from = ring ? ring.from : memberName(data.room_id, data.initiator_id);
    notify(`Missed ${data.type || ""} call from ${from} in ${data.room_id}`.replace("  ", " "), "missed", {
      callId: data.call_id,
    });
  }

  $("ring-answer").addEventListener("click", async () => {
    const ring = stopRing();
    if (!ring) return;
    if (state.call) await leaveCall(false); // one call at a time: answering hangs up the current one
    try {
      const ticket = (await api("POST", `/v1/calls/${encodeURIComponent(ring.callId)}/join`)).data;
      enterCall(ticket, { roomId: ring.roomId, type: ring.type, initiatorName: ring.from });
    } catch (err) {
      notify(err.message, "error");
    }
  });

  $("ring-decline").addEventListener("click", async () => {
    const ring = stopRing();
    if (!ring) return;
    try {
      await api("POST", `/v1/calls/${encodeURIComponent(ring.callId)}/reject`);
    } catch (err) {
      notify(err.message, "error");
    }
  });

  $("ring").addEventListener("keydown", (event) => {
    if (event.key === "Escape") $("ring-decline").click();
    if (event.key === "Tab") {
      // Keep focus inside the dialog while it rings.
      const buttons = [$("ring-decline"), $("ring-answer")];
      const index = buttons.indexOf(document.activeElement);
      event.preventDefault();
      buttons[(index + 1) % 2].focus(); // two buttons: either direction lands on the other
    }
  });

  // --- Rooms ---------------------------------------------------------------------------------

  async function loadRooms() {
    try {
      const body = await api("GET", "/app/api/rooms");
      state.rooms = body.data;
      $("room-create").hidden = !body.demo;
    } catch (err) {
      notify(err.message, "error");
      return;
    }
    const list = $("room-list");
    list.replaceChildren();
    for (const room of state.rooms) {
      const live = room.live_call
        ? el("span", { class: "badge badge-live", text: room.live_call.status === "ringing" ? "Ringing" : "Live" })
        : null;
      list.append(
        el(
          "li",
          {},
          el(
            "a",
            {
              href: `#/rooms/${encodeURIComponent(room.id)}`,
              class: "room-link",
              "aria-current": room.id === state.roomId ? "page" : null,
              "data-room": room.id,
            },
            el("span", { class: "room-name", text: room.id }),
            el("span", { class: "muted small", text: `${room.members.length} members` }),
            live
          )
        )
      );
    }
    $("rooms-empty").hidden = state.rooms.length > 0;
  }

  async function loadRoomDetail(roomId) {
    state.roomId = roomId;
    const room = state.rooms.find((r) => r.id === roomId);
    $("room-placeholder").hidden = !!room;
    $("room-content").hidden = !room;
    if (!room) {
      $("room-placeholder").textContent = roomId ? "You are not a member of that room." : "Choose a room.";
      return;
    }
    $("room-title").textContent = room.id;
    showError("room-error", null);
    const members = $("room-members");
    members.replaceChildren(
      ...room.members.map((m) =>
        el(
          "li",
          { class: "chip" },
          el("span", { class: "avatar", "aria-hidden": "true", text: initials(m.name) }),
          el("span", { text: m.name + (m.user_id === state.session.user_id ? " (you)" : "") }),
          m.power_level >= 50 ? el("span", { class: "muted small", text: "admin" }) : null
        )
      )
    );
    $("member-add").hidden = !(CONFIG.demo && room.my_power_level >= 50);
    $("call-join-live").hidden = !room.live_call;
    $("call-join-live").dataset.callId = room.live_call ? room.live_call.call_id : "";
    const base = `/v1/rooms/${encodeURIComponent(roomId)}`;
    try {
      const [calls, timeline] = await Promise.all([
        api("GET", `${base}/calls?limit=20`),
        api("GET", `${base}/timeline?limit=20`),
      ]);
      renderCallHistory(room, calls.data);
      renderTimeline(room, timeline.data);
    } catch (err) {
      showError("room-error", err);
    }
  }

  function renderCallHistory(room, calls) {
    const list = $("room-calls");
    list.replaceChildren();
    if (!calls.length) list.append(el("li", { class: "muted", text: "No calls yet." }));
    for (const call of calls) {
      const who = memberName(room.id, call.initiator_id);
      list.append(
        el(
          "li",
          { class: "history-item", "data-call": call.id, "data-status": call.status },
          el("span", { class: `badge status-${call.status}`, text: STATUS_WORDS[call.status] || call.status }),
          el("span", { text: `${call.type === "video" ? "Video" : "Audio"} call by ${who}` }),
          el("span", { class: "muted small", text: when(call.created_at || call.started_at) }),
          el("a", { href: `#/call/${encodeURIComponent(call.id)}`, text: "Details" })
        )
      );
    }
  }

  const TIMELINE_WORDS = {
    missed_call: "Missed call",
    rejected_call: "Declined call",
    call_ended: "Call ended",
    transcript: "Transcript",
    recording: "Recording",
    note: "Note",
  };

  function renderTimeline(room, entries) {
    const list = $("room-timeline");
    list.replaceChildren();
    if (!entries.length) list.append(el("li", { class: "muted", text: "Nothing yet." }));
    for (const entry of entries) {
      const data = entry.data || {};
      let text = TIMELINE_WORDS[entry.kind] || entry.kind;
      if (data.initiator_id) text += ` from ${memberName(room.id, data.initiator_id)}`;
      const item = el(
        "li",
        { class: "history-item", "data-kind": entry.kind },
        el("span", { class: "badge", text }),
        el("span", { class: "muted small", text: when(entry.created_at) }),
        entry.call_id ? el("a", { href: `#/call/${encodeURIComponent(entry.call_id)}`, text: "Call" }) : null
      );
      if (entry.kind === "transcript" && data.text) item.append(el("pre", { class: "transcript", text: data.text }));
      list.append(item);
    }
  }

  $("rooms-refresh").addEventListener("click", async () => {
    await loadRooms();
    if (state.roomId) loadRoomDetail(state.roomId);
  });

  $("room-create").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("room-create-error", null);
    const name = $("room-name").value.trim();
    const people = $("room-people")
      .value.split(",")
      .map((p) => p.trim())
      .filter(Boolean);
    if (!name) {
      showError("room-create-error", new Error("Give the room a name."));
      return;
    }
    try {
      await api("POST", "/app/api/rooms", { name, people });
      $("room-name").value = "";
      $("room-people").value = "";
      location.hash = `#/rooms/${encodeURIComponent(name)}`;
      await loadRooms();
      loadRoomDetail(name);
    } catch (err) {
      showError("room-create-error", err);
    }
  });

  $("member-add").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("member-name").value.trim();
    if (!name || !state.roomId) return;
    try {
      await api("POST", `/app/api/rooms/${encodeURIComponent(state.roomId)}/members`, { name });
      $("member-name").value = "";
      await loadRooms();
      loadRoomDetail(state.roomId);
    } catch (err) {
      showError("room-error", err);
    }
  });

  async function startCall(type) {
    const roomId = state.roomId;
    showError("room-error", null);
    try {
      const ticket = (await api("POST", "/v1/calls/initiate", { room_id: roomId, type })).data;
      enterCall(ticket, { roomId, type, outgoing: true });
    } catch (err) {
      showError("room-error", err);
    }
  }

  $("call-audio").addEventListener("click", () => startCall("audio"));
  $("call-video").addEventListener("click", () => startCall("video"));
  $("call-join-live").addEventListener("click", async () => {
    const callId = $("call-join-live").dataset.callId;
    try {
      const ticket = (await api("POST", `/v1/calls/${encodeURIComponent(callId)}/join`)).data;
      const room = state.rooms.find((r) => r.id === state.roomId);
      enterCall(ticket, { roomId: state.roomId, type: room && room.live_call ? room.live_call.type : "audio" });
    } catch (err) {
      showError("room-error", err);
    }
  });

  // --- In a call -------------------------------------------------------------------------------

  function enterCall(ticket, info) {
    const room = state.rooms.find((r) => r.id === info.roomId);
    state.call = {
      id: ticket.call_id || null,
      roomId: info.roomId,
      type: info.type,
      outgoing: !!info.outgoing,
      live: info.live || null,
      ticket,
      lk: null,
      canAdmin: !!(room && room.my_power_level >= 50),
      recording: false,
      captions: new Map(),
    };
    setView("call");
    $("call-title").textContent = info.live ? info.live.title : `${info.type === "video" ? "Video" : "Audio"} call \u00b7 ${info.roomId}`;
    $("call-error").textContent = "";
    $("captions").replaceChildren();
    $("tiles").replaceChildren();
    $("end-all").hidden = !!info.live || !(info.outgoing || state.call.canAdmin);
    $("toggle-rec").hidden = !!info.live || !state.call.canAdmin;
    setRecording(false);
    if (info.outgoing) {
      const others = room ? room.members.filter((m) => m.user_id !== state.session.user_id).map((m) => m.name) : [];
      setCallStatus(`Ringing ${others.join(", ") || "the room"}\u2026`, "ringing");
    } else setCallStatus(info.live ? `Live call \u00b7 ${ticket.role || ""}` : "Joining\u2026", "joining");
    if (!info.live) subscribeRoom(info.roomId);
    $("toggle-cam").textContent = info.type === "video" ? "Camera off" : "Camera on";
    $("leave").focus();
    connectMedia();
  }

  function setCallStatus(text, phase) {
    $("call-status").textContent = text;
    $("view-call").dataset.phase = phase;
  }

  function setConnection(text, phase) {
    const badge = $("connection-state");
    badge.textContent = text;
    badge.dataset.state = phase;
    $("reconnect").hidden = phase !== "failed" && phase !== "disconnected";
  }

  async function connectMedia() {
    const call = state.call;
    if (!call) return;
    const url = call.ticket.livekit_url || call.ticket.url;
    const token = call.ticket.livekit_token || call.ticket.token;
    if (!window.LivekitClient) {
      setConnection("Media library missing", "failed");
      return;
    }
    const { Room, RoomEvent } = window.LivekitClient;
    if (call.lk) await call.lk.disconnect();
    const lk = new Room({ adaptiveStream: true, dynacast: true });
    call.lk = lk;
    const render = () => state.call === call && renderTiles();
    lk.on(RoomEvent.ConnectionStateChanged, (connection) => {
      const words = {
        connecting: "Connecting\u2026",
        connected: "Connected",
        reconnecting: "Reconnecting\u2026",
        signalReconnecting: "Reconnecting\u2026",
        disconnected: "Disconnected",
      };
      setConnection(words[connection] || connection, connection);
    });
    for (const name of [
      RoomEvent.ParticipantConnected,
      RoomEvent.ParticipantDisconnected,
      RoomEvent.TrackSubscribed,
      RoomEvent.TrackUnsubscribed,
      RoomEvent.TrackMuted,
      RoomEvent.TrackUnmuted,
      RoomEvent.LocalTrackPublished,
      RoomEvent.LocalTrackUnpublished,
      RoomEvent.ActiveSpeakersChanged,
    ])
      lk.on(name, render);
    lk.on(RoomEvent.ParticipantConnected, () => {
      if (state.call === call && call.outgoing) setCallStatus("In call", "active");
    });
    lk.on(RoomEvent.AudioPlaybackStatusChanged, () => {
      if (!lk.canPlaybackAudio) notify("Click anywhere to hear the others.", "info");
    });
    setConnection("Connecting\u2026", "connecting");
    renderTiles();
    try {
      await lk.connect(url, token);
    } catch (err) {
      if (state.call !== call) return;
      setConnection("Couldn't connect", "failed");
      $("call-error").textContent = "Couldn't connect to the media server. Check your network, then press Reconnect.";
      return;
    }
    if (state.call !== call) return lk.disconnect();
    // A live call's page keeps saying which role the person has (host or viewer) once connected.
    if (!call.outgoing) setCallStatus(call.live ? `Live call \u00b7 ${call.ticket.role || ""}` : "In call", "active");
    const canPublish = !call.live || call.ticket.role === "host";
    if (canPublish) {
      try {
        await lk.localParticipant.setMicrophoneEnabled(true);
        if (call.type === "video") await lk.localParticipant.setCameraEnabled(true);
      } catch (err) {
        $("call-error").textContent =
          "Your microphone or camera is blocked. Allow it in the browser's address bar, then unmute.";
      }
    }
    syncMediaButtons();
    renderTiles();
  }

  function renderTiles() {
    const call = state.call;
    if (!call) return;
    const tiles = $("tiles");
    const lk = call.lk;
    const people = [];
    if (lk && lk.localParticipant && lk.state === "connected") people.push(lk.localParticipant);
    if (lk) for (const participant of lk.remoteParticipants.values()) people.push(participant);
    const keep = new Set();
    if (!people.length) {
      tiles.replaceChildren(tileFor({ identity: state.session.user_id, name: state.session.name, isLocal: true }, true));
      return;
    }
    for (const participant of people) {
      keep.add(participant.identity);
      let tile = tiles.querySelector(`[data-identity="${CSS.escape(participant.identity)}"]`);
      if (!tile) {
        tile = tileFor(participant, false);
        tiles.append(tile);
      }
      updateTile(tile, participant);
    }
    for (const tile of [...tiles.children]) if (!keep.has(tile.dataset.identity)) tile.remove();
  }

  function tileFor(participant, placeholder) {
    const name = participant.name || participant.identity;
    const tile = el(
      "figure",
      { class: "tile", "data-identity": participant.identity },
      el("div", { class: "tile-media" }, el("span", { class: "avatar avatar-lg", "aria-hidden": "true", text: initials(name) })),
      el(
        "figcaption",
        {},
        el("span", { class: "speaking-dot", "aria-hidden": "true" }),
        el("span", { class: "tile-name", text: name + (participant.isLocal ? " (you)" : "") }),
        el("span", { class: "tile-muted", text: "" })
      )
    );
    if (placeholder) tile.classList.add("tile-waiting");
    return tile;
  }

  function updateTile(tile, participant) {
    const { Track } = window.LivekitClient;
    tile.classList.toggle("speaking", !!participant.isSpeaking);
    tile.dataset.speaking = participant.isSpeaking ? "true" : "false";
    const micOn = participant.isMicrophoneEnabled;
    tile.querySelector(".tile-muted").textContent = micOn ? "" : "muted";
    tile.querySelector(".tile-name").textContent =
      (participant.name || participant.identity) + (participant.isLocal ? " (you)" : "");
    const media = tile.querySelector(".tile-media");
    const camera = participant.getTrackPublication(Track.Source.Camera);
    const video = media.querySelector("video");
    if (camera && camera.track && !camera.isMuted) {
      if (!video) {
        const element = camera.track.attach();
        element.setAttribute("aria-label", `${participant.name || participant.identity}'s camera`);
        media.append(element);
      }
    } else if (video) video.remove();
    if (!participant.isLocal) {
      const mic = participant.getTrackPublication(Track.Source.Microphone);
      if (mic && mic.track && !tile.querySelector("audio")) tile.append(mic.track.attach());
    }
  }

  function syncMediaButtons() {
    const lk = state.call && state.call.lk;
    const local = lk && lk.localParticipant;
    const micOn = !!(local && local.isMicrophoneEnabled);
    const camOn = !!(local && local.isCameraEnabled);
    $("toggle-mic").textContent = micOn ? "Mute" : "Unmute";
    $("toggle-mic").setAttribute("aria-pressed", String(!micOn));
    $("toggle-cam").textContent = camOn ? "Camera off" : "Camera on";
    $("toggle-cam").setAttribute("aria-pressed", String(camOn));
  }

  $("toggle-mic").addEventListener("click", async () => {
    const lk = state.call && state.call.lk;
    if (!lk || lk.state !== "connected") return;
    try {
      await lk.localParticipant.setMicrophoneEnabled(!lk.localParticipant.isMicrophoneEnabled);
    } catch (err) {
      $("call-error").textContent = "Your microphone is blocked. Allow it in the browser's address bar.";
    }
    syncMediaButtons();
    renderTiles();
  });

  $("toggle-cam").addEventListener("click", async () => {
    const lk = state.call && state.call.lk;
    if (!lk || lk.state !== "connected") return;
    try {
      await lk.localParticipant.setCameraEnabled(!lk.localParticipant.isCameraEnabled);
    } catch (err) {
      $("call-error").textContent = "Your camera is blocked. Allow it in the browser's address bar.";
    }
    syncMediaButtons();
    renderTiles();
  });

  $("reconnect").addEventListener("click", () => connectMedia());

  function setRecording(on) {
    if (state.call) state.call.recording = on;
    $("rec-badge").hidden = !on;
    $("toggle-rec").textContent = on ? "Stop recording" : "Start recording";
    $("toggle-rec").setAttribute("aria-pressed", String(on));
  }

  $("toggle-rec").addEventListener("click", async () => {
    const call = state.call;
    if (!call || !call.id) return;
    const verb = call.recording ? "stop" : "start";
    const body = verb === "start" ? { audio: true, video: call.type === "video", transcript: true } : {};
    try {
      await api("POST", `/v1/calls/${encodeURIComponent(call.id)}/recording/${verb}`, body);
      setRecording(verb === "start");
    } catch (err) {
      $("call-error").textContent = err.message;
    }
  });

  async function leaveCall(endForEveryone) {
    const call = state.call;
    if (!call) return;
    try {
      if (call.live) {
        if (endForEveryone) await api("POST", `/v1/live/calls/${encodeURIComponent(call.live.id)}/end`);
      } else
        await api("POST", `/v1/calls/${encodeURIComponent(call.id)}/${endForEveryone ? "end" : "leave"}`);
    } catch (err) {
      if (err.code !== "SW_CALL_ENDED" && err.code !== "SW_CALL_NOT_FOUND") {
        $("call-error").textContent = err.message;
        return;
      }
    }
    finishCall(call, null);
  }

  function finishCall(call, ended) {
    if (state.call !== call) return;
    state.call = null;
    if (call.lk) call.lk.disconnect();
    if (call.live) {
      location.hash = `#/live/${encodeURIComponent(call.live.id)}`;
      route();
      return;
    }
    location.hash = `#/call/${encodeURIComponent(call.id)}`;
    showSummary(call.id, ended);
  }

  $("leave").addEventListener("click", () => leaveCall(false));
  $("end-all").addEventListener("click", () => {
    if (confirm("End the call for everyone?")) leaveCall(true);
  });

  function onCallEnded(data) {
    if (state.ring && state.ring.callId === data.call_id) stopRing();
    if (state.call && state.call.id === data.call_id) finishCall(state.call, data);
    else if (location.hash === `#/call/${encodeURIComponent(data.call_id)}`) showSummary(data.call_id, data);
  }

  async function refreshCallState() {
    const call = state.call;
    if (!call || !call.id) return;
    try {
      const body = (await api("GET", `/v1/calls/${encodeURIComponent(call.id)}`)).data;
      if (state.call !== call) return;
      if (body.status === "active" && call.outgoing) setCallStatus("In call", "active");
    } catch (err) {
      /* the next event tries again */
    }
  }

  function onCaption(data) {
    const call = state.call;
    if (!call || data.roomId !== call.roomId) return;
    const box = $("captions");
    const key = data.utteranceId || `${data.speakerLabel}-${data.index}`;
    let line = call.captions.get(key);
    if (!line) {
      line = el("p", { class: "caption" }, el("strong", {}), el("span", {}));
      call.captions.set(key, line);
      box.append(line);
    }
    line.querySelector("strong").textContent = (data.speaker || data.speakerLabel || "") + ": ";
    line.querySelector("span").textContent = data.text;
    line.classList.toggle("partial", data.final === false);
    while (box.children.length > 4) {
      const first = box.firstElementChild;
      for (const [k, v] of call.captions) if (v === first) call.captions.delete(k);
      first.remove();
    }
  }

  // --- After a call ----------------------------------------------------------------------------

  const END_WORDS = {
    missed: "Missed \u2014 nobody answered",
    rejected: "Declined",
    cancelled: "Cancelled before anyone answered",
    ended: "Ended",
    failed: "The call failed",
  };

  async function showSummary(callId, ended) {
    setView("summary");
    $("summary-title").textContent = "Call";
    if (ended && ended.status) {
      $("summary-status").textContent = END_WORDS[ended.status] || ended.status;
      $("view-summary").dataset.status = ended.status;
    }
    $("summary-refresh").onclick = () => showSummary(callId);
    let call;
    try {
      call = (await api("GET", `/v1/calls/${encodeURIComponent(callId)}`)).data;
    } catch (err) {
      $("summary-status").textContent = err.message;
      return;
    }
    $("view-summary").dataset.status = call.status;
    $("summary-back").href = `#/rooms/${encodeURIComponent(call.room_id)}`;
    $("summary-title").textContent = `${call.type === "video" ? "Video" : "Audio"} call \u00b7 ${call.room_id}`;
    const length = duration(call.started_at, call.ended_at);
    const words = END_WORDS[call.status] || STATUS_WORDS[call.status] || call.status;
    $("summary-status").textContent = [words, length && `lasted ${length}`, when(call.ended_at)]
      .filter(Boolean)
      .join(" \u00b7 ");
    $("summary-people").replaceChildren(
      ...call.participants.map((p) =>
        el("li", { class: "chip" }, el("span", { text: memberName(call.room_id, p.participant_id) }))
      )
    );
    const box = $("summary-recordings");
    box.replaceChildren();
    if (!call.recordings.length) box.append(el("p", { class: "muted", text: "No recordings." }));
    for (const media of call.recordings) {
      const isVideo = (media.contentType || "").startsWith("video/");
      box.append(
        el(
          "div",
          { class: "recording" },
          el(isVideo ? "video" : "audio", { controls: true, preload: "metadata", src: media.url, class: "player" }),
          el("a", { href: media.url, download: "", text: "Download" })
        )
      );
    }
    try {
      const timeline = await api("GET", `/v1/rooms/${encodeURIComponent(call.room_id)}/timeline?limit=50`);
      for (const entry of timeline.data)
        if (entry.kind === "transcript" && entry.call_id === callId && entry.data && entry.data.text)
          box.append(el("h3", { text: "Transcript" }), el("pre", { class: "transcript", text: entry.data.text }));
    } catch (err) {
      /* no timeline: nothing more to show */
    }
  }

  // --- Call analysis (document 002) ------------------------------------------------------------

  async function loadAnalysisList() {
    try {
      const body = await api("GET", "/api/calls?limit=50");
      const list = $("analysis-list");
      list.replaceChildren();
      if (!body.items.length) list.append(el("li", { class: "muted", text: "Nothing uploaded yet." }));
      for (const item of body.items)
        list.append(
          el(
            "li",
            { class: "history-item" },
            el("span", { class: `badge status-${item.status.toLowerCase()}`, text: item.status.toLowerCase() }),
            el("a", { href: `#/analysis/${encodeURIComponent(item.callId)}`, text: item.title || "Untitled" }),
            el("span", { class: "muted small", text: when(item.createdAt) })
          )
        );
    } catch (err) {
      showError("upload-error", err);
    }
  }

  $("upload-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("upload-error", null);
    const file = $("upload-file").files[0];
    if (!file) {
      showError("upload-error", new Error("Choose a recording to upload."));
      return;
    }
    const form = new FormData();
    form.append("file", file);
    const metadata = { title: $("upload-title").value.trim() || file.name };
    if ($("upload-contact").value.trim()) metadata.contactName = $("upload-contact").value.trim();
    // A text part: a JSON file part (a Blob) is answered 500 by /api/calls/analyze today (reported on issue 20).
    form.append("metadata", JSON.stringify(metadata));
    try {
      const body = await api("POST", "/api/calls/analyze", form, { idempotent: true });
      $("upload-form").reset();
      location.hash = `#/analysis/${encodeURIComponent(body.callId)}`;
    } catch (err) {
      showError("upload-error", err);
    }
  });

  async function showAnalysis(callId, polled) {
    clearTimeout(state.analysisTimer);
    const pane = $("analysis-detail");
    let call;
    try {
      call = await api("GET", `/api/calls/${encodeURIComponent(callId)}`);
    } catch (err) {
      pane.replaceChildren(el("p", { class: "field-error", text: err.message }));
      return;
    }
    const head = el("div", { class: "pane-head" }, el("h1", { text: call.title || "Untitled" }));
    const status = el("p", { class: "call-status", role: "status" });
    pane.replaceChildren(head, status);
    if (call.status !== "COMPLETED" && call.status !== "FAILED") {
      let progress = null;
      try {
        const poll = await api("GET", `/api/calls/status?ids=${encodeURIComponent(callId)}`);
        progress = poll.items[0] && poll.items[0].progress;
      } catch (err) {
        /* the detail's status is enough */
      }
      status.textContent = `${call.status.toLowerCase()}\u2026`;
      if (typeof progress === "number")
        pane.append(el("progress", { max: "100", value: String(progress), "aria-label": "Progress" }));
      state.analysisTimer = setTimeout(() => location.hash.endsWith(callId) && showAnalysis(callId, true), 3000);
      return;
    }
    if (polled) loadAnalysisList(); // its status changed while we watched
    if (call.status === "FAILED") {
      status.textContent = `Failed: ${call.errorReason || "the recording could not be analysed."}`;
      return;
    }
    status.textContent = `Completed \u00b7 ${Math.round(call.durationSeconds || 0)} s`;
    try {
      const [transcript, analysis] = await Promise.all([
        api("GET", `/api/calls/${encodeURIComponent(callId)}/transcript`),
        api("GET", `/api/calls/${encodeURIComponent(callId)}/analysis`),
      ]);
      pane.append(el("h2", { text: "Summary" }), el("p", { text: analysis.summary || "No summary." }));
      pane.append(el("h2", { text: "Action items" }));
      const items = el("ul", { class: "history" });
      for (const item of analysis.actionItems || [])
        items.append(
          el("li", { class: "history-item" }, el("span", { text: item.text }), el("span", { class: "muted small", text: [item.owner, item.dueText].filter(Boolean).join(" \u00b7 ") }))
        );
      if (!(analysis.actionItems || []).length) items.append(el("li", { class: "muted", text: "None." }));
      pane.append(items, el("h2", { text: "Speakers" }));
      pane.append(
        el("ul", { class: "chips" }, ...(transcript.speakers || []).map((s) => el("li", { class: "chip", text: `${s.name || s.speakerId}` })))
      );
      pane.append(el("h2", { text: "Transcript" }));
      const lines = el("ol", { class: "segments" });
      for (const segment of transcript.segments || [])
        lines.append(el("li", {}, el("strong", { text: `${segment.speaker || segment.speakerId}: ` }), el("span", { text: segment.text })));
      pane.append(lines);
    } catch (err) {
      pane.append(el("p", { class: "field-error", text: err.message }));
    }
  }

  // --- Live calls (document 003) ---------------------------------------------------------------

  async function loadLiveList() {
    try {
      const body = await api("GET", "/v1/live/calls?limit=50");
      const list = $("live-list");
      list.replaceChildren();
      const items = body.data || body.items || [];
      if (!items.length) list.append(el("li", { class: "muted", text: "No live calls yet." }));
      for (const live of items)
        list.append(
          el(
            "li",
            { class: "history-item" },
            el("span", { class: `badge status-${live.status}`, text: live.status }),
            el("a", { href: `#/live/${encodeURIComponent(live.id)}`, text: live.title }),
            el("span", { class: "muted small", text: when(live.scheduled_at || live.created_at) })
          )
        );
    } catch (err) {
      showError("live-error", err);
    }
  }

  $("live-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("live-error", null);
    const title = $("live-title-input").value.trim();
    if (!title) {
      showError("live-error", new Error("Give the live call a title."));
      return;
    }
    const at = $("live-when").value;
    try {
      const live = await api(
        "POST",
        "/v1/live/calls",
        { host_user_id: state.session.user_id, title, scheduled_at: at ? new Date(at).toISOString() : null },
        { idempotent: true }
      );
      $("live-form").reset();
      location.hash = `#/live/${encodeURIComponent(live.id)}`;
    } catch (err) {
      showError("live-error", err);
    }
  });

  async function showLive(id) {
    const pane = $("live-detail");
    let live;
    try {
      live = await api("GET", `/v1/live/calls/${encodeURIComponent(id)}`);
    } catch (err) {
      pane.replaceChildren(el("p", { class: "field-error", text: err.message }));
      return;
    }
    const isHost = live.host_user_id === state.session.user_id;
    const error = el("p", { class: "field-error", role: "alert" });
    const actions = el("div", { class: "actions" });
    const act = async (fn) => {
      error.textContent = "";
      try {
        await fn();
      } catch (err) {
        error.textContent = err.message;
      }
    };
    if (isHost && live.status === "scheduled")
      actions.append(el("button", { type: "button", class: "btn btn-primary", text: "Go live", onclick: () => act(async () => { await api("POST", `/v1/live/calls/${encodeURIComponent(id)}/start`); showLive(id); }) }));
    if (live.status === "live" || (isHost && live.status === "scheduled"))
      actions.append(
        el("button", {
          type: "button",
          class: "btn",
          text: isHost ? "Join as host" : "Watch",
          onclick: () =>
            act(async () => {
              const ticket = await api("POST", `/v1/live/calls/${encodeURIComponent(id)}/token`);
              enterCall(ticket, { roomId: live.stream_call_id, type: "video", live });
            }),
        })
      );
    if (isHost && live.status === "live")
      actions.append(el("button", { type: "button", class: "btn btn-danger", text: "End", onclick: () => act(async () => { await api("POST", `/v1/live/calls/${encodeURIComponent(id)}/end`); showLive(id); }) }));
    const facts = el(
      "dl",
      { class: "facts" },
      el("dt", { text: "Status" }), el("dd", { text: live.status }),
      el("dt", { text: "Host" }), el("dd", { text: live.host_user_id + (isHost ? " (you)" : "") }),
      el("dt", { text: "Scheduled" }), el("dd", { text: when(live.scheduled_at) || "\u2014" }),
      el("dt", { text: "Started" }), el("dd", { text: when(live.started_at) || "\u2014" }),
      el("dt", { text: "Recording" }),
      el("dd", {}, live.recording_url ? el("a", { href: live.recording_url, text: "Open the recording" }) : "Not ready")
    );
    pane.replaceChildren(el("div", { class: "pane-head" }, el("h1", { text: live.title }), actions), error, facts);
  }

  // --- Routing -----------------------------------------------------------------------------

  async function route() {
    if (!state.session) return showSignIn();
    if (state.call) return setView("call");
    const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
    const [section, id] = parts;
    if (section === "call" && id) {
      if (!state.rooms.length) await loadRooms();
      return showSummary(id);
    }
    if (section === "analysis") {
      setView("analysis");
      await loadAnalysisList();
      if (id) showAnalysis(id);
      return;
    }
    if (section === "live") {
      setView("live");
      await loadLiveList();
      if (id) showLive(id);
      return;
    }
    setView("rooms");
    state.roomId = id || state.roomId || null;
    await loadRooms();
    if (!id && !state.roomId && state.rooms.length) state.roomId = state.rooms[0].id;
    await loadRoomDetail(state.roomId);
  }

  window.addEventListener("hashchange", route);
  document.addEventListener("click", () => {
    const lk = state.call && state.call.lk;
    if (lk && !lk.canPlaybackAudio) lk.startAudio();
  });

  const session = loadSession();
  if (session) start(session);
  else showSignIn();
})();

// stembot practice player: the engine under the results page (page.js draws and wires it).
// Streams every stem from its own <audio> element (nothing is decoded whole, so a long song
// costs the tab little memory), mixes them in Web Audio with a gain per stem, and keeps them
// on one clock: the first stem's. They start together once each can play, and any stem more
// than 50 ms off is brought back. Tempo is the browser's pitch-preserving playbackRate; pitch
// is SoundTouch's AudioWorklet (vendored: static/vendor/README.md) on the mix, left out of the
// path at 0 semitones. The A-B loop jumps back to A when the clock reaches B.
(function () {
  'use strict';
  var DRIFT_S = 0.05, CHECK_MS = 40, SETTLE_MS = 400, READY = 3; // HAVE_FUTURE_DATA
  var TEMPO = [0.5, 1.5], PITCH = [-6, 6], MIN_LOOP_S = 0.1;
  var CONNECTIONS = 6; // what a browser opens to one server over HTTP/1.1

  function clamp(x, lo, hi) { return Math.min(hi, Math.max(lo, x)); }

  function keepPitch(audio) {
    audio.preservesPitch = true;
    if ('webkitPreservesPitch' in audio) audio.webkitPreservesPitch = true;
  }

  window.StembotPlayer = function (audios, options) {
    var opts = options || {};
    var m = {
      ctx: null, tracks: [], bus: null, out: null, shifter: null, pitchState: 'off',
      playing: false, starting: false, offset: 0, duration: +opts.duration || 0,
      tempo: 1, pitch: 0, loop: {a: null, b: null}, loops: 0, resyncs: 0, stalls: 0, ready: 0,
      onchange: opts.onchange || function () {}, onerror: opts.onerror || function () {}
    };
    var timer = null, waitToken = 0, settleUntil = 0, unlocked = false;

    audios.forEach(function (audio) {
      var t = {audio: audio, src: audio.getAttribute('src'), source: null, gain: null,
        volume: 1, muted: false, solo: false};
      m.tracks.push(t);
      keepPitch(audio);
      audio.addEventListener('loadedmetadata', function () {
        if (isFinite(audio.duration)) m.duration = Math.max(m.duration, audio.duration);
        m.onchange('duration');
      });
      // a stem that runs out of data holds the others up until it can go on
      audio.addEventListener('waiting', function () {
        if (m.playing && !m.starting && !audio.ended) { m.stalls++; restart(position()); }
      });
      audio.addEventListener('error', function () {
        var err = audio.error;
        if (!m.playing && !m.starting) return;
        pause();
        m.onerror('media ' + (err ? err.code : '?'));
      });
    });
    function lead() { return m.tracks[0].audio; }

    function level(t) {
      var anySolo = m.tracks.some(function (o) { return o.solo; });
      return (t.muted || (anySolo && !t.solo)) ? 0 : t.volume;
    }
    function applyLevels() {
      m.tracks.forEach(function (t) {
        if (t.gain) t.gain.gain.value = level(t);
        else if (!m.ctx) t.audio.volume = level(t); // no Web Audio: the element's own volume
      });
    }

    // Web Audio, built on the first play (a user's gesture lets the context run)
    function build() {
      if (m.ctx || m.noWebAudio) return;
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) { m.noWebAudio = true; m.pitchState = 'unavailable'; m.onchange('pitch'); return; }
      var ctx = m.ctx = new Ctx();
      m.bus = ctx.createGain();
      m.out = ctx.createGain();
      m.out.connect(ctx.destination);
      m.tracks.forEach(function (t) {
        t.audio.volume = 1;
        t.source = ctx.createMediaElementSource(t.audio);
        t.gain = ctx.createGain();
        t.source.connect(t.gain);
        t.gain.connect(m.bus);
      });
      applyLevels();
      route();
      loadShifter();
    }

    // The shifter's module and processor are asked for before any stem streams: over HTTP/1.1
    // a browser opens 6 connections to a server, and 6 playing stems hold them all.
    function loadShifter() {
      if (!m.ctx.audioWorklet || !opts.shifter || !opts.processor) {
        m.pitchState = 'unavailable';  // e.g. a page served over plain HTTP from afar
        m.onchange('pitch');
        return;
      }
      m.pitchState = 'loading';
      Promise.all([import(opts.shifter), m.ctx.audioWorklet.addModule(opts.processor)])
        .then(function (loaded) {
          m.shifter = new loaded[0].SoundTouchNode({context: m.ctx});
          m.shifter.connect(m.out);
          m.pitchState = 'ready';
          setPitch(m.pitch);
        }).catch(function (e) {
          m.pitchState = 'unavailable';
          m.pitchError = String(e && e.message || e);
          route();
          m.onchange('pitch');
        });
    }
    // and fetched once the page is up (cached for good), so the first Play finds them here
    if (opts.shifter && opts.processor && window.AudioWorkletNode) {
      import(opts.shifter).catch(function () { /* tried again on Play */ });
      fetch(opts.processor, {credentials: 'same-origin'}).catch(function () { /* idem */ });
    }

    // the mix goes through the shifter only while the pitch is changed
    function route() {
      if (!m.bus) return;
      var shift = !!m.shifter && m.pitch !== 0;
      if (m.shifter) m.shifter.pitchSemitones.value = m.pitch;
      if (m.routed === shift) return;
      m.bus.disconnect();
      m.bus.connect(shift ? m.shifter : m.out);
      m.routed = shift;
    }

    function position() {
      if (m.playing && !m.starting) return lead().currentTime;
      return m.offset;
    }

    function pauseAll() { m.tracks.forEach(function (t) { t.audio.pause(); }); }

    // every stem at ``at``, at the tempo; the first play starts streaming them
    function align(at) {
      m.tracks.forEach(function (t) {
        var a = t.audio;
        if (a.getAttribute('src') !== t.src) {  // let go by release()
          a.preload = 'auto';
          a.setAttribute('src', t.src);
        } else if (a.preload !== 'auto') {
          a.preload = 'auto';
          if (a.readyState === 0) a.load();
        }
        a.defaultPlaybackRate = a.playbackRate = m.tempo;
        keepPitch(a);
        if (Math.abs(a.currentTime - at) > 0.001) a.currentTime = at;
      });
    }

    // calls ``go`` once every stem can play from where it stands (polled: simple and sure)
    function whenReady(go) {
      var token = ++waitToken;
      (function check() {
        if (token !== waitToken) return;
        var ready = m.tracks.filter(function (t) {
          return t.audio.readyState >= READY && !t.audio.seeking;
        }).length;
        if (ready !== m.ready) { m.ready = ready; m.onchange('loading'); }
        if (ready === m.tracks.length) go(); else setTimeout(check, 30);
      }());
    }

    function restart(at) {
      m.starting = true;
      pauseAll();
      m.offset = at;
      align(at);
      m.ready = 0;
      m.onchange('loading');
      whenReady(function () {
        m.starting = false;
        settleUntil = performance.now() + SETTLE_MS;
        m.tracks.forEach(function (t) {
          var p = t.audio.play();
          if (p) p.catch(function (e) { if (e.name !== 'AbortError') m.onerror(e.message); });
        });
        if (!timer) timer = setInterval(check, CHECK_MS);
        m.onchange('play');
      });
    }

    function play() {
      build();
      if (m.ctx && m.ctx.state !== 'running') m.ctx.resume();
      if (m.playing) return;
      m.playing = true;
      var at = m.offset;
      if (m.duration && at >= m.duration - 0.05) at = 0;
      if (loopOn() && (at < m.loop.a || at >= m.loop.b)) at = m.loop.a;
      if (!unlocked) {  // some phones let an element play later only if a gesture started it
        unlocked = true;
        align(at);
        m.tracks.forEach(function (t) {
          var p = t.audio.play();
          if (p) p.catch(function () { /* paused at once, on purpose */ });
          t.audio.pause();
        });
      }
      restart(at);
    }

    function pause() {
      if (!m.playing) return;
      m.offset = position();
      m.playing = m.starting = false;
      waitToken++;
      pauseAll();
      clearInterval(timer);
      timer = null;
      m.onchange('pause');
    }

    function seek(seconds) {
      var at = Math.max(0, m.duration ? Math.min(m.duration, seconds) : seconds);
      if (m.playing) restart(at);
      else {
        m.offset = at;
        if (m.ctx) align(at);
        m.onchange('seek');
      }
    }

    // Before a download: 6 streaming stems hold every connection a browser opens to a server
    // over HTTP/1.1 (even paused), so they let go of them; Play takes them up again.
    function release() {
      if (!unlocked || m.tracks.length < CONNECTIONS) return;
      pause();
      m.tracks.forEach(function (t) {
        t.audio.removeAttribute('src');
        t.audio.load();
      });
      m.onchange('release');
    }

    function loopOn() {
      return m.loop.a !== null && m.loop.b !== null && m.loop.b - m.loop.a >= MIN_LOOP_S;
    }

    // the clock: the loop, the end of the song, and stems that drifted off it
    function check() {
      if (!m.playing || m.starting) return;
      var now = lead().currentTime;
      if (loopOn() && now >= m.loop.b) { m.loops++; restart(m.loop.a); return; }
      if (lead().ended || (m.duration && now >= m.duration)) {
        pause();
        m.offset = 0;
        m.onchange('end');
        return;
      }
      if (performance.now() < settleUntil) return;
      var off = m.tracks.some(function (t) {
        return !t.audio.ended && Math.abs(t.audio.currentTime - now) > DRIFT_S;
      });
      if (off) { m.resyncs++; restart(now); }
    }

    function setTempo(x) {
      m.tempo = clamp(Math.round(x * 20) / 20, TEMPO[0], TEMPO[1]);
      m.tracks.forEach(function (t) {
        t.audio.defaultPlaybackRate = t.audio.playbackRate = m.tempo;
        keepPitch(t.audio);
      });
      m.onchange('tempo');
    }

    function setPitch(n) {
      m.pitch = clamp(Math.round(n), PITCH[0], PITCH[1]);
      route();
      m.onchange('pitch');
    }

    // A and B at the clock; B before A swaps them
    function mark(which) {
      m.loop[which] = position();
      var a = m.loop.a, b = m.loop.b;
      if (a !== null && b !== null && b < a) { m.loop.a = b; m.loop.b = a; }
      m.onchange('loop');
    }
    function clearLoop() { m.loop.a = m.loop.b = null; m.onchange('loop'); }

    m.play = play;
    m.pause = pause;
    m.toggle = function () { if (m.playing) pause(); else play(); };
    m.seek = seek;
    m.position = position;
    m.level = level;
    m.applyLevels = applyLevels;
    m.setTempo = setTempo;
    m.setPitch = setPitch;
    m.setA = function () { mark('a'); };
    m.setB = function () { mark('b'); };
    m.clearLoop = clearLoop;
    m.loopOn = loopOn;
    m.release = release;
    return m;
  };
}());

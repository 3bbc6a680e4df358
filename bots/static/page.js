// stembot results page: waveforms from precomputed peaks, and a Web Audio mixer.
// No framework, no other host. State is on window.stembotMixer (tests read it).
// Texts come in the page's language from the server (#i18n, JSON; bots/page/template.py).
(function () {
  'use strict';
  document.documentElement.classList.add('js');
  var app = document.getElementById('app');
  if (!app) return;
  var texts = {};
  try { texts = JSON.parse(document.getElementById('i18n').textContent); } catch (e) { /* keys */ }
  function tr(key, values) {
    return String(texts[key] || key).replace(/\{(\w+)\}/g, function (m, name) {
      return values && name in values ? String(values[name]) : m;
    });
  }
  var playBtn = document.getElementById('play');
  var seek = document.getElementById('seek');
  var clock = document.getElementById('clock');
  var status = document.getElementById('status');

  var mixer = window.stembotMixer = {
    ctx: null, tracks: [], playing: false, loading: false, loaded: false,
    offset: 0, startedAt: 0, duration: 0, sources: [], peaksReady: false
  };

  // localise the expiry time
  var when = app.querySelector('time[datetime]');
  if (when) {
    var d = new Date(when.getAttribute('datetime'));
    var opts = {dateStyle: 'medium', timeStyle: 'short'};
    if (!isNaN(d)) when.textContent = d.toLocaleString(document.documentElement.lang || [], opts);
  }

  Array.prototype.forEach.call(app.querySelectorAll('.stem'), function (row) {
    var t = {
      name: row.getAttribute('data-name'), row: row,
      canvas: row.querySelector('canvas'), audio: row.querySelector('audio'),
      url: row.querySelector('audio').getAttribute('src'),
      peaks: null, buffer: null, gain: null, volume: 1, muted: false, solo: false
    };
    mixer.tracks.push(t);
    row.querySelector('.mute').addEventListener('click', function () { t.muted = !t.muted; update(); });
    row.querySelector('.solo').addEventListener('click', function () { t.solo = !t.solo; update(); });
    row.querySelector('.vol').addEventListener('input', function (e) { t.volume = +e.target.value; update(); });
    t.audio.addEventListener('play', function () {
      if (mixer.playing) pause();
      mixer.tracks.forEach(function (o) { if (o !== t) o.audio.pause(); });
      tick();
    });
    t.audio.addEventListener('timeupdate', function () { draw(t); });
    t.canvas.addEventListener('click', function (e) {
      var r = t.canvas.getBoundingClientRect();
      var frac = (e.clientX - r.left) / r.width;
      if (mixer.loaded) seekTo(frac * mixer.duration);
      else if (t.audio.duration) t.audio.currentTime = frac * t.audio.duration;
    });
  });

  function fmt(s) {
    s = Math.max(0, Math.round(s || 0));
    return Math.floor(s / 60) + ':' + ('0' + (s % 60)).slice(-2);
  }

  function level(t) {
    var anySolo = mixer.tracks.some(function (o) { return o.solo; });
    return (t.muted || (anySolo && !t.solo)) ? 0 : t.volume;
  }

  // buttons, gains and the volume sliders follow the state
  function update() {
    mixer.tracks.forEach(function (t) {
      t.row.querySelector('.mute').setAttribute('aria-pressed', String(t.muted));
      t.row.querySelector('.solo').setAttribute('aria-pressed', String(t.solo));
      t.row.classList.toggle('silent', level(t) === 0);
      if (t.gain) t.gain.gain.value = level(t);
    });
  }
  mixer.update = update;
  mixer.level = level;

  function position() {
    if (!mixer.playing) return mixer.offset;
    return Math.min(mixer.duration, mixer.ctx.currentTime - mixer.startedAt + mixer.offset);
  }
  mixer.position = position;

  function draw(t) {
    var c = t.canvas;
    if (!c || !t.peaks) return;
    var ratio = window.devicePixelRatio || 1;
    var w = Math.max(1, Math.round(c.clientWidth * ratio));
    var h = Math.max(1, Math.round(c.clientHeight * ratio));
    if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
    var g = c.getContext('2d');
    var css = getComputedStyle(c);
    var col = function (v, d) { return css.getPropertyValue(v).trim() || d; };
    var played = 0;
    if (mixer.loaded && mixer.duration) played = position() / mixer.duration;
    else if (t.audio.duration) played = t.audio.currentTime / t.audio.duration;
    g.clearRect(0, 0, w, h);
    var n = t.peaks.length, bar = w / n, mid = h / 2;
    for (var x = 0; x < w; x += Math.max(1, ratio * 2)) {
      var i = Math.min(n - 1, Math.floor(x / bar));
      var amp = Math.max(ratio, t.peaks[i] * mid * 0.95);
      g.fillStyle = x / w < played ? col('--played', '#e0513a') : col('--wave', '#8a8f98');
      g.fillRect(x, mid - amp, Math.max(1, ratio * 1.5), amp * 2);
    }
    if (played > 0) {
      g.fillStyle = col('--head', '#111');
      g.fillRect(Math.round(played * w), 0, Math.max(1, ratio), h);
    }
  }
  function drawAll() { mixer.tracks.forEach(draw); }
  mixer.drawAll = drawAll;
  window.addEventListener('resize', drawAll);

  var ticking = false;
  function tick() {
    if (ticking) return;
    ticking = true;
    requestAnimationFrame(function step() {
      var busy = mixer.playing || mixer.tracks.some(function (t) { return !t.audio.paused; });
      drawAll();
      if (mixer.loaded) {
        var p = position();
        clock.textContent = fmt(p) + ' / ' + fmt(mixer.duration);
        if (document.activeElement !== seek) seek.value = String(Math.round(1000 * p / mixer.duration));
        if (mixer.playing && p >= mixer.duration) { pause(); mixer.offset = 0; drawAll(); }
      }
      if (busy) requestAnimationFrame(step); else ticking = false;
    });
  }

  // peaks for the waveforms
  fetch(app.getAttribute('data-src'), {credentials: 'same-origin'})
    .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
    .then(function (data) {
      data.stems.forEach(function (s) {
        mixer.tracks.forEach(function (t) { if (t.name === s.name) t.peaks = s.peaks; });
      });
      if (data.duration_s && !mixer.loaded) clock.textContent = '0:00 / ' + fmt(data.duration_s);
      mixer.peaksReady = true;
      drawAll();
    })
    .catch(function (e) { status.textContent = tr('no_waveforms', {error: e.message}); });

  function load() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) { status.textContent = tr('no_mixer'); return null; }
    mixer.ctx = mixer.ctx || new Ctx();
    mixer.loading = true;
    playBtn.disabled = true;
    var done = 0;
    status.textContent = tr('loading', {done: 0, total: mixer.tracks.length});
    return Promise.all(mixer.tracks.map(function (t) {
      return fetch(t.url, {credentials: 'same-origin'})
        .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.arrayBuffer(); })
        .then(function (b) {
          return new Promise(function (ok, fail) { mixer.ctx.decodeAudioData(b, ok, fail); });
        })
        .then(function (buf) {
          t.buffer = buf;
          t.gain = mixer.ctx.createGain();
          t.gain.connect(mixer.ctx.destination);
          status.textContent = tr('loading', {done: ++done, total: mixer.tracks.length});
        });
    })).then(function () {
      mixer.duration = Math.max.apply(null, mixer.tracks.map(function (t) { return t.buffer.duration; }));
      mixer.loaded = true;
      mixer.loading = false;
      playBtn.disabled = false;
      status.textContent = '';
      update();
    }, function (e) {
      mixer.loading = false;
      playBtn.disabled = false;
      status.textContent = tr('load_failed', {error: e && e.message || e});
      throw e;
    });
  }

  function stopSources() {
    mixer.sources.forEach(function (s) { s.onended = null; try { s.stop(); } catch (e) { /* not started */ } });
    mixer.sources = [];
  }

  function start() {
    var ctx = mixer.ctx;
    var at = ctx.currentTime + 0.05; // every stem starts at the same context time
    if (mixer.offset >= mixer.duration) mixer.offset = 0;
    mixer.tracks.forEach(function (t) {
      t.audio.pause();
      var src = ctx.createBufferSource();
      src.buffer = t.buffer;
      src.connect(t.gain);
      src.start(at, Math.min(mixer.offset, t.buffer.duration));
      mixer.sources.push(src);
    });
    mixer.startedAt = at;
    mixer.playing = true;
    playBtn.textContent = tr('pause');
    playBtn.setAttribute('aria-pressed', 'true');
    tick();
  }

  function pause() {
    if (!mixer.playing) return;
    mixer.offset = position();
    stopSources();
    mixer.playing = false;
    playBtn.textContent = tr('play');
    playBtn.setAttribute('aria-pressed', 'false');
  }

  function seekTo(seconds) {
    var wasPlaying = mixer.playing;
    if (wasPlaying) { stopSources(); mixer.playing = false; }
    mixer.offset = Math.max(0, Math.min(mixer.duration, seconds));
    if (wasPlaying) start();
    drawAll();
    tick();
  }

  function play() {
    if (mixer.loading) return Promise.resolve();
    var ready = mixer.loaded ? Promise.resolve() : load();
    if (!ready) return Promise.resolve();
    return ready.then(function () { return mixer.ctx.resume(); }).then(start);
  }

  mixer.play = play;
  mixer.pause = pause;
  mixer.seek = seekTo;
  playBtn.addEventListener('click', function () {
    if (mixer.playing) pause(); else play().catch(function () { /* status shows it */ });
  });
  seek.addEventListener('input', function () {
    if (mixer.loaded) seekTo(+seek.value / 1000 * mixer.duration);
  });
}());

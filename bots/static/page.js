// stembot results page: waveforms from precomputed peaks, the mixer and the practice controls
// (tempo, pitch, A-B loop, keys) over the engine in player.js. No framework, no other host.
// The engine is window.stembotMixer (tests read it). Texts come in the page's language from
// the server (#i18n, JSON; bots/page/template.py and practice.py).
(function () {
  'use strict';
  var app = document.getElementById('app');
  if (!app || !window.StembotPlayer) return;  // the players below do without
  document.documentElement.classList.add('js');
  var texts = {};
  try { texts = JSON.parse(document.getElementById('i18n').textContent); } catch (e) { /* keys */ }
  function tr(key, values) {
    return String(texts[key] || key).replace(/\{(\w+)\}/g, function (m, name) {
      return values && name in values ? String(values[name]) : m;
    });
  }
  function $(id) { return document.getElementById(id); }
  var lang = document.documentElement.lang || undefined;
  var playBtn = $('play'), seek = $('seek'), clock = $('clock'), status = $('status');
  var practice = $('practice'), tempo = $('tempo'), pitch = $('pitch');
  var percent = new Intl.NumberFormat(lang, {style: 'percent', maximumFractionDigits: 0});
  var signed = new Intl.NumberFormat(lang, {signDisplay: 'exceptZero'});
  var rows = Array.prototype.slice.call(app.querySelectorAll('.stem'));
  var dragging = null;  // the seek slider's pending move

  var m = window.stembotMixer = window.StembotPlayer(
    rows.map(function (row) { return row.querySelector('audio'); }),
    {
      shifter: practice.getAttribute('data-shifter'),
      processor: practice.getAttribute('data-processor'),
      onchange: changed,
      onerror: function (e) { status.textContent = tr('load_failed', {error: e}); }
    }
  );
  m.peaksReady = false;

  // localise the expiry time
  var when = app.querySelector('time[datetime]');
  if (when) {
    var d = new Date(when.getAttribute('datetime'));
    var opts = {dateStyle: 'medium', timeStyle: 'short'};
    if (!isNaN(d)) when.textContent = d.toLocaleString(lang || [], opts);
  }

  rows.forEach(function (row, i) {
    var t = m.tracks[i];
    t.name = row.getAttribute('data-name');
    t.row = row;
    t.canvas = row.querySelector('canvas');
    t.peaks = null;
    row.querySelector('.mute').addEventListener('click', function () { t.muted = !t.muted; update(); });
    row.querySelector('.solo').addEventListener('click', function () { t.solo = !t.solo; update(); });
    row.querySelector('.vol').addEventListener('input', function (e) { t.volume = +e.target.value; update(); });
    t.canvas.addEventListener('click', function (e) {
      var r = t.canvas.getBoundingClientRect();
      if (m.duration) m.seek((e.clientX - r.left) / r.width * m.duration);
    });
  });

  function fmt(s) {
    s = Math.max(0, Math.floor(s || 0));
    return Math.floor(s / 60) + ':' + ('0' + (s % 60)).slice(-2);
  }

  // buttons, gains and the rows follow the state
  function update() {
    m.tracks.forEach(function (t) {
      t.row.querySelector('.mute').setAttribute('aria-pressed', String(t.muted));
      t.row.querySelector('.solo').setAttribute('aria-pressed', String(t.solo));
      t.row.classList.toggle('silent', m.level(t) === 0);
    });
    m.applyLevels();
  }
  m.update = update;

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
    var played = m.duration ? m.position() / m.duration : 0;
    g.clearRect(0, 0, w, h);
    if (m.duration && m.loop.a !== null) {  // the loop, shaded; one edge while B is missing
      var a = m.loop.a / m.duration * w;
      var b = m.loop.b !== null ? m.loop.b / m.duration * w : a + Math.max(1, ratio * 2);
      g.fillStyle = col('--loop', 'rgba(224, 81, 58, .2)');
      g.fillRect(a, 0, Math.max(1, b - a), h);
      g.fillStyle = col('--played', '#e0513a');
      g.fillRect(a, 0, ratio, h);
      if (m.loop.b !== null) g.fillRect(b - ratio, 0, ratio, h);
    }
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
  function drawAll() { m.tracks.forEach(draw); }
  m.drawAll = drawAll;
  window.addEventListener('resize', drawAll);

  function showClock() {
    if (dragging) return;
    var p = m.position();
    clock.textContent = fmt(p) + ' / ' + fmt(m.duration);
    if (m.duration && document.activeElement !== seek) {
      seek.value = String(Math.round(1000 * p / m.duration));
    }
  }

  var ticking = false;
  function tick() {
    if (ticking) return;
    ticking = true;
    requestAnimationFrame(function step() {
      drawAll();
      showClock();
      if (m.playing) requestAnimationFrame(step); else ticking = false;
    });
  }

  // the stems' loading is told on the first Play, and later only when it takes a while
  var played = false, loading = false, slow = null;
  function showLoading() {
    if (!m.starting) return;
    loading = true;
    status.textContent = tr('loading', {done: m.ready, total: m.tracks.length});
  }
  function changed(what) {
    if (what === 'loading' && m.starting) {
      if (!played || loading) showLoading();
      else if (!slow) slow = setTimeout(function () { slow = null; showLoading(); }, 500);
    } else if (!m.starting) {
      if (what === 'play') played = true;
      if (loading) status.textContent = '';
      loading = false;
    }
    var on = m.playing;
    playBtn.textContent = tr(on ? 'pause' : 'play');
    playBtn.setAttribute('aria-pressed', String(on));
    if (what === 'tempo' || what === 'pitch') showKnobs();
    if (what === 'loop') showLoop();
    if (on) tick(); else { drawAll(); showClock(); }
  }

  // tempo, pitch and the loop
  function showKnobs() {
    tempo.value = String(m.tempo);
    $('tempo-value').textContent = percent.format(m.tempo);
    pitch.value = String(m.pitch);
    $('pitch-value').textContent = signed.format(m.pitch);
    var off = m.pitchState === 'unavailable';
    ['pitch', 'pitch-down', 'pitch-up', 'pitch-value'].forEach(function (id) { $(id).disabled = off; });
    var note = $('pitch-note');
    if (off && !note) {
      note = document.createElement('p');
      note.id = 'pitch-note';
      note.className = 'note';
      note.textContent = tr('no_pitch');
      $('pitch-knob').appendChild(note);
    }
  }
  function showLoop() {
    var a = m.loop.a, b = m.loop.b;
    $('loop-a').setAttribute('aria-pressed', String(a !== null));
    $('loop-b').setAttribute('aria-pressed', String(b !== null));
    $('loop-value').textContent = a === null && b === null ? tr('loop_hint')
      : (a === null ? '…' : fmt(a)) + ' – ' + (b === null ? '…' : fmt(b));
  }
  function tempoBy(steps) { m.setTempo(m.tempo + steps * 0.05); }
  function pitchBy(steps) { m.setPitch(m.pitch + steps); }
  function seekBy(s) { m.seek(m.position() + s); }

  tempo.addEventListener('input', function () { m.setTempo(+tempo.value); });
  pitch.addEventListener('input', function () { m.setPitch(+pitch.value); });
  $('tempo-down').addEventListener('click', function () { tempoBy(-1); });
  $('tempo-up').addEventListener('click', function () { tempoBy(1); });
  $('tempo-value').addEventListener('click', function () { m.setTempo(1); });
  $('pitch-down').addEventListener('click', function () { pitchBy(-1); });
  $('pitch-up').addEventListener('click', function () { pitchBy(1); });
  $('pitch-value').addEventListener('click', function () { m.setPitch(0); });
  $('loop-a').addEventListener('click', m.setA);
  $('loop-b').addEventListener('click', m.setB);
  $('loop-clear').addEventListener('click', m.clearLoop);
  showKnobs();
  showLoop();

  // keys: Space play/pause, arrows seek, [ ] or -/+ tempo, Shift+arrows pitch, A/B/L loop
  function action(e) {
    var k = e.key, code = e.code;
    if (k === ' ' || code === 'Space') return m.toggle;
    var arrow = {ArrowLeft: -1, ArrowDown: -1, ArrowRight: 1, ArrowUp: 1}[k];
    if (arrow && e.shiftKey) return function () { pitchBy(arrow); };
    if (k === 'ArrowLeft' || k === 'ArrowRight') return function () { seekBy(5 * arrow); };
    if (k === '[' || k === '-' || code === 'NumpadSubtract') return function () { tempoBy(-1); };
    if (k === ']' || k === '+' || k === '=' || code === 'NumpadAdd') return function () { tempoBy(1); };
    // letters by their key, or where the layout has none (Cyrillic...) by their place
    var letter = /^[a-z]$/i.test(k) ? k.toLowerCase() : (/^Key[ABL]$/.test(code) ? code[3].toLowerCase() : '');
    return {a: m.setA, b: m.setB, l: m.clearLoop}[letter] || null;
  }
  function typing(el) {
    var tag = el && el.tagName;
    return tag === 'TEXTAREA' || tag === 'SELECT' || (el && el.isContentEditable)
      || (tag === 'INPUT' && el.type !== 'range');
  }
  var spaceDown = false;
  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    var onSlider = e.target && e.target.type === 'range';
    if (onSlider && !e.shiftKey && /^Arrow/.test(e.key)) return; // the slider moves itself
    var act = action(e);
    if (!act) return;
    e.preventDefault();
    spaceDown = e.key === ' ';
    if (!e.repeat || !spaceDown) act();
  });
  // a focused button would click on Space's release too
  document.addEventListener('keyup', function (e) {
    if (e.key === ' ' && spaceDown) { e.preventDefault(); spaceDown = false; }
  });

  // peaks for the waveforms, and the length before any stem is loaded
  fetch(app.getAttribute('data-src'), {credentials: 'same-origin'})
    .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
    .then(function (data) {
      data.stems.forEach(function (s) {
        m.tracks.forEach(function (t) { if (t.name === s.name) t.peaks = s.peaks; });
      });
      if (data.duration_s) m.duration = Math.max(m.duration, data.duration_s);
      m.peaksReady = true;
      showClock();
      drawAll();
    })
    .catch(function (e) { status.textContent = tr('no_waveforms', {error: e.message}); });

  // "Download this mix": what the mixer plays (mutes, solos, volumes in percent) made into
  // one file by the server (bots/page/mix.py), then downloaded through a link on this server
  var mixBtn = $('mix-download');
  function mixVolumes() {
    var volumes = {};
    m.tracks.forEach(function (t) { volumes[t.name] = Math.round(m.level(t) * 100); });
    return volumes;
  }
  function mixLink(mix) {
    var old = $('mix-link');
    if (old) old.parentNode.removeChild(old);
    var a = document.createElement('a'), small = document.createElement('small');
    a.id = 'mix-link';
    a.className = 'dl mix';
    a.href = mix.url;
    a.setAttribute('download', mix.name);
    a.textContent = mix.name + ' ';
    small.textContent = mix.size_label;
    a.appendChild(small);
    a.addEventListener('click', m.release);
    $('mixdown').appendChild(a);
    return a;
  }
  function makeMix() {
    var status = $('mix-status'), volumes = mixVolumes(), names = Object.keys(volumes);
    var none = names.every(function (n) { return volumes[n] === 0; });
    var whole = names.every(function (n) { return volumes[n] === 100; });
    if (none || whole) { status.textContent = tr(none ? 'mix_none' : 'mix_every'); return; }
    mixBtn.disabled = true;
    status.textContent = tr('mix_making');
    fetch(mixBtn.getAttribute('data-url'), {
      method: 'POST',
      credentials: 'same-origin',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({volumes: volumes, format: $('mix-format').value})
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (r.ok && body.url) return body;
        var e = new Error(body.error || tr('mix_failed', {error: 'HTTP ' + r.status}));
        e.told = true;
        throw e;
      });
    }).then(function (mix) {
      status.textContent = tr('mix_ready');
      m.release();
      mixLink(mix).click();
    }).catch(function (e) {
      status.textContent = e.told ? e.message : tr('mix_failed', {error: e.message});
    }).then(function () { mixBtn.disabled = false; });
  }
  if (mixBtn) mixBtn.addEventListener('click', makeMix);

  playBtn.addEventListener('click', m.toggle);
  Array.prototype.forEach.call(app.querySelectorAll('a.dl'), function (link) {
    link.addEventListener('click', m.release);
  });
  // dragging the slider moves the clock; the stems follow once it rests
  seek.addEventListener('input', function () {
    if (!m.duration) return;
    var at = +seek.value / 1000 * m.duration;
    clock.textContent = fmt(at) + ' / ' + fmt(m.duration);
    clearTimeout(dragging);
    dragging = setTimeout(function () { dragging = null; m.seek(at); }, 150);
  });
}());

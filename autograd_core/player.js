/* The backprop player's script: shows frame k of AGC_PLAYER_DATA_<id> by
   moving highlight classes and changing the grad (or data) line of boxes.
   It finds its player from the script element itself, so it also runs when a
   notebook front end inserts the output and re-creates its scripts. */
(function () {
  "use strict";
  var id = "__PLAYER_ID__";
  var data = window["AGC_PLAYER_DATA_" + id];
  var here = document.currentScript;
  var tries = 0;
  function find() {
    return (here && here.closest && here.closest(".agc-player")) || document.getElementById(id);
  }
  function start() {
    var player = find();
    if (!player) {
      // some front ends run output scripts before attaching the output to the page: wait for it
      if (tries++ < 100) { setTimeout(start, 50); }
      return;
    }
    if (!data || player.getAttribute("data-agc-ready")) { return; }
    player.setAttribute("data-agc-ready", "1");
    run(player);
  }
  function run(player) {
    var frames = data.frames;
    var last = frames.length - 1;
    var cache = {};
    function element(elementId) {
      if (!(elementId in cache)) { cache[elementId] = player.querySelector('[id="' + elementId + '"]'); }
      return cache[elementId];
    }
    var slider = player.querySelector(".agc-controls input");
    var counter = player.querySelector(".agc-counter");
    var explain = player.querySelector(".agc-explain");
    var buttons = {};
    Array.prototype.forEach.call(player.querySelectorAll("[data-go]"), function (b) { buttons[b.getAttribute("data-go")] = b; });
    var marked = [];
    var current = 0;
    function mark(ids, cls) {
      ids.forEach(function (elementId) {
        var el = element(elementId);
        if (el) { el.classList.add(cls); marked.push([el, cls]); }
      });
    }
    var graph = player.querySelector(".agc-graph");
    function union(rects) {
      if (!rects.length) { return null; }
      return rects.reduce(function (u, r) {
        return { left: Math.min(u.left, r.left), right: Math.max(u.right, r.right),
                 top: Math.min(u.top, r.top), bottom: Math.max(u.bottom, r.bottom) };
      });
    }
    function rects(ids, namesOnly) {
      // a box's name is its first text: in a wide box it is the part that must stay in view
      var found = [];
      ids.forEach(function (elementId) {
        var el = element(elementId);
        var part = el && (namesOnly && el.querySelector("text") || el);
        if (part) { found.push(part.getBoundingClientRect()); }
      });
      return found;
    }
    function shift(start, size, must, want, lo, hi) {
      // the new start of the view: centred on what we want to see, but never
      // hiding what we must see; when that is too big, its beginning
      var margin = 24;
      var target = (want[lo] + want[hi]) / 2 - size / 2;
      var least = must[hi] + margin - size, most = must[lo] - margin;
      target = least <= most ? Math.min(Math.max(target, least), most) : most;
      return target - start;
    }
    function inView(k) {
      // what frame k must show: at the start, the first step too (the node it
      // processes and the inputs receiving its gradients), so the player opens where the work begins
      var frame = frames[k];
      if (k > 0 || last === 0) { return frame; }
      return { c: frame.c.concat(frames[1].c), r: frame.r.concat(frames[1].r) };
    }
    function reveal(frame) {
      // a big graph scrolls in its box: bring the names of the boxes receiving
      // a gradient into view, and the current node with them
      if (graph.scrollWidth <= graph.clientWidth && graph.scrollHeight <= graph.clientHeight) { return; }
      var whole = union(rects(frame.c.concat(frame.r), false));
      var must = union(rects(frame.r, true)) || whole;
      if (!must) { return; }
      var view = graph.getBoundingClientRect();
      graph.scrollLeft += shift(view.left + graph.clientLeft, graph.clientWidth, must, whole, "left", "right");
      graph.scrollTop += shift(view.top + graph.clientTop, graph.clientHeight, must, whole, "top", "bottom");
    }
    function show(k) {
      k = Math.max(0, Math.min(last, k));
      current = k;
      marked.forEach(function (m) { m[0].classList.remove(m[1]); });
      marked = [];
      var texts = {};
      var key;
      for (key in data.initial) { texts[key] = data.initial[key]; }
      for (var j = 0; j <= k; j++) { for (key in frames[j].t) { texts[key] = frames[j].t[key]; } }
      for (key in texts) {
        var el = element(key);
        if (el) {
          el.textContent = texts[key];
          el.classList.toggle("agc-pending", texts[key].indexOf("not computed") >= 0);
        }
      }
      var frame = frames[k];
      mark(frame.r, "agc-receive");
      mark(frame.c, "agc-current");
      mark(frame.e, "agc-edge");
      explain.textContent = frame.x;
      reveal(inView(k));
      slider.value = String(k);
      counter.textContent = k === 0 ? "start (" + last + " steps)" : "step " + k + " of " + last;
      var focusWasInside = player.contains(document.activeElement);
      buttons.first.disabled = buttons.prev.disabled = k === 0;
      buttons.next.disabled = buttons.last.disabled = k === last;
      // a button that just got disabled loses the focus (to <body>, or it keeps
      // it while disabled, by browser); keep it on the player so the arrow keys
      // go on working
      var now = document.activeElement;
      if (focusWasInside && (!player.contains(now) || now.disabled)) { player.focus(); }
      player.setAttribute("data-frame", String(k));
    }
    var moves = {
      first: function () { return 0; }, prev: function () { return current - 1; },
      next: function () { return current + 1; }, last: function () { return last; }
    };
    var play = player.querySelector("[data-play]");
    var timer = null;
    function stop() {
      if (timer !== null) { clearInterval(timer); timer = null; }
      play.textContent = "play \u25B6";
    }
    play.addEventListener("click", function () {
      if (timer !== null) { stop(); return; }
      if (current === last) { show(0); }
      play.textContent = "pause";
      timer = setInterval(function () {
        show(current + 1);
        if (current === last) { stop(); }
      }, 900);
    });
    Object.keys(buttons).forEach(function (name) {
      buttons[name].addEventListener("click", function () { stop(); show(moves[name]()); });
    });
    slider.addEventListener("input", function () { stop(); show(parseInt(slider.value, 10)); });
    var keys = { ArrowLeft: "prev", ArrowRight: "next", Home: "first", End: "last" };
    player.addEventListener("keydown", function (event) {
      var name = keys[event.key];
      if (!name || event.target === slider) { return; }
      event.preventDefault();
      event.stopPropagation();  // keep notebook shortcuts from also acting on the key
      stop();
      show(moves[name]());
    });
    // Two views, switched by the zoom button: the whole width ("fit"), when
    // that keeps the text readable, else the current step at a readable size
    // in a scrolling box, as large as it fits (up to the natural size) but
    // never smaller than READABLE_PX text.
    var READABLE_PX = 11;
    var zoom = player.querySelector("[data-zoom]");
    var svg = graph.querySelector("svg");
    var natural = svg ? svg.getBoundingClientRect() : null;
    function naturalTextPx() {
      // the size of a box's text at the natural size: its font-size in the SVG's units, in pixels
      var text = svg.querySelector("g.node text[font-size]");
      var units = svg.viewBox && svg.viewBox.baseVal && svg.viewBox.baseVal.width;
      var size = text ? parseFloat(text.getAttribute("font-size")) : 14;
      return units ? size * natural.width / units : size;
    }
    function stepScale(frame) {
      // the largest scale, up to 1, at which the frame's boxes fit the view; at least the readable one
      var readable = Math.min(1, READABLE_PX / naturalTextPx());
      var now = svg.getBoundingClientRect().width / natural.width;
      var area = union(rects(frame.c.concat(frame.r), false));
      if (!area) { return Math.max(readable, Math.min(1, graph.clientWidth / natural.width)); }
      var fits = Math.min(graph.clientWidth / ((area.right - area.left) / now + 48),
                          graph.clientHeight / ((area.bottom - area.top) / now + 48));
      return Math.max(readable, Math.min(1, fits));
    }
    function fit(on) {
      graph.classList.toggle("agc-fit", on);
      svg.style.width = svg.style.height = "";
      if (!on) {
        var scale = stepScale(inView(current));
        svg.style.width = natural.width * scale + "px";
        svg.style.height = natural.height * scale + "px";
      }
      zoom.textContent = on ? "zoom to step" : "fit to width";
      zoom.setAttribute("title", on ? "show the current step at a readable size" : "scale the graph to the player's width");
    }
    zoom.addEventListener("click", function () { fit(!graph.classList.contains("agc-fit")); reveal(inView(current)); });
    if (svg) { fit(natural.width <= graph.clientWidth || graph.clientWidth / natural.width * naturalTextPx() >= READABLE_PX); }
    player.querySelector(".agc-controls").style.display = "";
    explain.style.display = "";
    player.querySelector(".agc-steps").style.display = "none";
    show(0);
  }
  start();
})();

(function () {
  // Index filters: dataset, family, status and free text; rows are hidden, never removed.
  var ids = ["dataset", "family", "status", "text"];
  var f = ids.map(function (k) { return [k, document.getElementById("f-" + k)]; })
             .filter(function (p) { return p[1]; });
  function apply() {
    var shown = 0, rows = document.querySelectorAll("#matrix tbody tr");
    rows.forEach(function (tr) {
      var ok = f.every(function (p) {
        var v = p[1].value.trim().toLowerCase();
        if (!v) return true;
        return p[0] === "text" ? tr.dataset.text.indexOf(v) >= 0 : tr.dataset[p[0]].toLowerCase() === v;
      });
      tr.hidden = !ok;
      if (ok) shown++;
    });
    var c = document.getElementById("f-count");
    if (c) c.textContent = shown + " of " + rows.length + " specs shown";
  }
  f.forEach(function (p) { p[1].addEventListener(p[0] === "text" ? "input" : "change", apply); });
  if (f.length) apply();

  // Copy buttons: the Clipboard API, else a hidden textarea + execCommand, else select the code.
  function selectNode(node) {
    var r = document.createRange(); r.selectNodeContents(node);
    var s = window.getSelection(); s.removeAllRanges(); s.addRange(r);
  }
  function fallback(text, node, btn) {
    var ta = document.createElement("textarea");
    ta.value = text; ta.setAttribute("readonly", ""); ta.style.position = "fixed"; ta.style.opacity = "0";
    document.body.appendChild(ta); ta.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(ta);
    if (ok) { btn.textContent = "Copied"; } else { selectNode(node); btn.textContent = "Selected: press Ctrl+C"; }
  }
  document.querySelectorAll("button.copy").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var node = document.getElementById(btn.dataset.target);
      var text = node.innerText;
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { btn.textContent = "Copied"; },
                                                 function () { fallback(text, node, btn); });
      } else { fallback(text, node, btn); }
      setTimeout(function () { btn.textContent = "Copy"; }, 2500);
    });
  });
})();

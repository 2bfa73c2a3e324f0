// 页面上的小交互，放在静态文件里以便内容安全策略（CSP）禁止一切内联脚本：
// data-confirm 的表单或按钮先请用户确认；data-select-on-focus 的输入框获得焦点时全选。
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var text = form.getAttribute && form.getAttribute("data-confirm");
    if (text && !window.confirm(text)) { e.preventDefault(); }
  });
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("button[data-confirm], input[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) { e.preventDefault(); }
  });
  document.addEventListener("focusin", function (e) {
    if (e.target.hasAttribute && e.target.hasAttribute("data-select-on-focus")) { e.target.select(); }
  });
})();

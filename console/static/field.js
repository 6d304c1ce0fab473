// The field page: the phone's position into the result form (the officer may type it too).
"use strict";
(function () {
  const button = document.getElementById("locate");
  if (!button || !navigator.geolocation) return;
  button.addEventListener("click", function () {
    button.textContent = "正在定位…";
    navigator.geolocation.getCurrentPosition(function (p) {
      document.getElementById("lat").value = p.coords.latitude.toFixed(6);
      document.getElementById("lon").value = p.coords.longitude.toFixed(6);
      button.textContent = "已获取位置";
    }, function () { button.textContent = "无法定位，请手工填写"; }, {enableHighAccuracy: true, timeout: 15000});
  });
})();

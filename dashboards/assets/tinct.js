// A click on a waterfall row selects its span: one document listener instead
// of a Dash callback input per row (hundreds of those make Dash crawl).
document.addEventListener("click", function (event) {
  var row = event.target.closest && event.target.closest(".span-row[data-span-id]");
  if (!row || !window.dash_clientside || !window.dash_clientside.set_props) {
    return;
  }
  var list = row.parentElement ? row.parentElement.querySelectorAll(".span-row.selected") : [];
  for (var i = 0; i < list.length; i++) {
    list[i].classList.remove("selected");
  }
  row.classList.add("selected");
  window.dash_clientside.set_props("span-selected", {
    data: { span: row.getAttribute("data-span-id"), at: Date.now() },
  });
});

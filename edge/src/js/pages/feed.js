// The home feed: photos from people you follow, with infinite scroll.
import { h } from "../dom.js";
import { api } from "../api.js";
import { infiniteList, photoCard, describeError } from "../ui.js";

export async function render(main, { onDispose }) {
  const list = infiniteList({
    label: "Feed photos",
    empty: "Your feed is empty. Follow people to see their photos here, or upload your own.",
    eagerCount: 6,
    load: (cursor) => api(`/feed?limit=12${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { auth: true }),
    renderItem: (photo, { lazy }) => photoCard(photo, { lazy }),
    onError: (err, state) => {
      state.textContent = describeError(err, { missingFeature: "The feed" });
    },
  });
  onDispose(list.dispose);
  main.append(
    h("div", { class: "page-head" },
      h("h1", {}, "Your feed"),
      h("a", { href: "/upload", "data-link": true, class: "btn primary" }, "Upload a photo"),
    ),
    list.element,
  );
  return "Feed";
}

// Profiles (/users/{u}): header, follow/unfollow, photo grid; and follower/following lists.
import { h, formatCount, formatDate } from "../dom.js";
import { api, ApiError, signOut } from "../api.js";
import { session } from "../session.js";
import { accountSection } from "./account.js";
import { announce, showError, clearMessages, infiniteList, photoCard, describeError, loadingBlock, replace } from "../ui.js";

const enc = encodeURIComponent;

async function loadProfile(username, signal) {
  try {
    return await api(`/users/${enc(username)}`, { signal });
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

function notFound(main, username) {
  replace(main, h("h1", {}, "User not found"), h("p", {}, `There is no user called “${username}”.`));
  return "User not found";
}

/** Whether the signed-in user follows `username`: the profile may say; otherwise my following list. */
async function amFollowing(profileData, signal) {
  for (const key of ["followed_by_me", "is_following", "following_by_me"]) {
    if (typeof profileData[key] === "boolean") return profileData[key];
  }
  let cursor = null;
  for (let page = 0; page < 10; page += 1) {
    const result = await api(`/users/${enc(session.username)}/following?limit=100${cursor ? `&cursor=${enc(cursor)}` : ""}`, { signal, auth: true });
    if ((result.items || []).some((u) => u.username === profileData.username)) return true;
    cursor = result.next_cursor;
    if (!cursor) return false;
  }
  return false;
}

export const profile = {
  async render(main, { params, signal, navigate, onDispose }) {
    main.append(loadingBlock());
    const data = await loadProfile(params.username, signal);
    if (!data) return notFound(main, params.username);
    const username = data.username;
    const isMe = session.signedIn && session.username === username;
    let followers = Number(data.followers) || 0;

    const followersLink = h("a", { href: `/users/${enc(username)}/followers`, "data-link": true });
    const stats = h("ul", { class: "stats", "aria-label": "Profile statistics" },
      h("li", {}, formatCount(data.photos, "photo", "photos")),
      h("li", {}, followersLink),
      h("li", {}, h("a", { href: `/users/${enc(username)}/following`, "data-link": true }, `${Number(data.following) || 0} following`)),
    );
    const syncFollowers = () => { followersLink.textContent = formatCount(followers, "follower", "followers"); };
    syncFollowers();

    const actions = h("div", { class: "profile-actions" });
    if (isMe) {
      actions.append(h("a", { href: "/upload", "data-link": true, class: "btn primary" }, "Upload a photo"));
      const everywhere = h("button", { type: "button", class: "btn secondary" }, "Log out everywhere");
      everywhere.addEventListener("click", async () => {
        clearMessages();
        everywhere.disabled = true;
        try {
          await signOut({ everywhere: true });
          navigate("/login");
          announce("You have logged out on every device.");
        } catch (err) {
          showError(err);
          everywhere.disabled = false;
        }
      });
      actions.append(everywhere);
    } else if (session.signedIn) {
      const button = h("button", { type: "button", class: "btn primary", disabled: true }, "Follow");
      let following = false;
      const sync = () => {
        button.textContent = following ? "Unfollow" : "Follow";
        button.classList.toggle("primary", !following);
        button.classList.toggle("secondary", following);
      };
      amFollowing(data, signal).then((value) => { following = value; }, () => {}).finally(() => {
        sync();
        button.disabled = false;
      });
      button.addEventListener("click", async () => {
        clearMessages();
        button.disabled = true;
        try {
          await api(`/users/${enc(username)}/follow`, { method: following ? "DELETE" : "PUT", auth: true });
          followers += following ? -1 : 1;
          following = !following;
          sync();
          syncFollowers();
          announce(following ? `You follow @${username}.` : `You unfollowed @${username}.`);
        } catch (err) {
          showError(err, { missingFeature: "Following people" });
        } finally {
          button.disabled = false;
          button.focus();
        }
      });
      actions.append(button);
    } else {
      actions.append(h("a", { href: `/login?next=${enc(location.pathname)}`, "data-link": true, class: "btn secondary" }, "Log in to follow"));
    }

    const header = h("header", { class: "profile-head" },
      h("div", { class: "avatar", "aria-hidden": "true" }, (data.display_name || username).charAt(0).toUpperCase()),
      h("div", { class: "profile-info" },
        h("h1", {}, data.display_name || username),
        h("p", { class: "handle" }, `@${username}`, data.created_at ? ` · joined ${formatDate(data.created_at)}` : ""),
        data.bio ? h("p", { class: "bio" }, data.bio) : null,
        stats,
      ),
      actions,
    );

    const grid = infiniteList({
      label: `Photos by ${username}`,
      empty: isMe ? "You have not posted any photos yet." : "No photos yet.",
      eagerCount: 6,
      load: (cursor) => api(`/users/${enc(username)}/photos?limit=24${cursor ? `&cursor=${enc(cursor)}` : ""}`, { signal }),
      renderItem: (photo, { lazy }) => photoCard(photo, { lazy, showOwner: false }),
    });
    onDispose(grid.dispose);
    replace(main, header, h("h2", { class: "section-title" }, "Photos"), grid.element,
      isMe ? accountSection({ navigate, signal }) : null);
    return data.display_name ? `${data.display_name} (@${username})` : `@${username}`;
  },
};

export const connections = {
  async render(main, { params, onDispose }) {
    const { username, kind } = params;
    const title = kind === "followers" ? `Followers of @${username}` : `People @${username} follows`;
    const list = infiniteList({
      label: title,
      listClass: "people",
      empty: kind === "followers" ? "No followers yet." : "Not following anyone yet.",
      load: (cursor) => api(`/users/${enc(username)}/${kind}?limit=50${cursor ? `&cursor=${enc(cursor)}` : ""}`),
      renderItem: (user) => h("li", {},
        h("a", { href: `/users/${enc(user.username)}`, "data-link": true },
          h("span", { class: "avatar small", "aria-hidden": "true" }, (user.display_name || user.username).charAt(0).toUpperCase()),
          h("span", {}, user.display_name ? `${user.display_name} ` : "", h("span", { class: "handle" }, `@${user.username}`)))),
      onError: (err, state) => {
        state.textContent = describeError(err, { missingFeature: kind === "followers" ? "The followers list" : "The following list" });
      },
    });
    onDispose(list.dispose);
    main.append(
      h("p", { class: "crumb" }, h("a", { href: `/users/${enc(username)}`, "data-link": true }, `← @${username}`)),
      h("h1", {}, title),
      list.element,
    );
    return title;
  },
};

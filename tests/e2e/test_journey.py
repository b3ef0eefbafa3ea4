"""The web client end to end in Chromium: sign up, upload, follow, feed, like, edit, delete, on desktop and 375 px."""
from __future__ import annotations

import io
import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

PASSWORD = "Sunny-day-42"
PROCESSING_TIMEOUT = 90_000


def jpeg(path: Path, width: int = 1600, height: int = 1200) -> Path:
    """A real JPEG with detail (so it is a few hundred KB): gradients plus noise."""
    from PIL import Image, ImageDraw

    image = Image.effect_noise((width, height), 60).convert("RGB")
    draw = ImageDraw.Draw(image)
    for i in range(0, width, 40):
        draw.rectangle([i, 0, i + 20, height], fill=(i % 255, 120, 255 - i % 255))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    path.write_bytes(buffer.getvalue())
    return path


def sign_up(page: Page, username: str) -> None:
    page.goto("/signup")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email").fill(f"{username}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up", exact=True).click()
    expect(page).to_have_url(re.compile(r"/feed$"))
    expect(page.get_by_role("heading", name="Your feed")).to_be_visible()


def log_in(page: Page, username: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/feed$"))


def upload(page: Page, image: Path, caption: str) -> str:
    """Upload through the UI; returns the new photo's id once it is processed."""
    page.get_by_role("link", name="Upload photo").click()
    expect(page.get_by_role("heading", name="Upload a photo")).to_be_visible()
    page.get_by_label("Photo", exact=True).set_input_files(str(image))
    page.get_by_label("Caption").fill(caption)
    page.get_by_role("button", name="Upload", exact=True).click()
    progress = page.get_by_role("progressbar", name="Upload progress")
    expect(progress).to_be_visible()
    expect(progress).to_have_js_property("value", 100)
    expect(page.get_by_role("link", name="View photo")).to_be_visible(timeout=PROCESSING_TIMEOUT)
    thumbnail = page.locator(".result img")
    expect(thumbnail).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
    href = page.get_by_role("link", name="View photo").get_attribute("href")
    return href.rsplit("/", 1)[-1]


def image_painted(page: Page, selector: str) -> None:
    """Wait until the image has loaded and faded in over its colour placeholder."""
    image = page.locator(selector).first
    expect(image).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    expect(page.locator(f"picture.loaded > {selector.split()[-1]}").first).to_be_visible()


def no_horizontal_scroll(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
        .map(e => `${e.tagName.toLowerCase()}.${e.className} → ${Math.round(e.getBoundingClientRect().right)}px`)
        .slice(0, 8)""")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {page.url}: {wide}"


def feed_shows(page: Page, photo_id: str):
    """Open the home feed until it shows the photo (fan-out and backfill are asynchronous); its card."""
    page.goto("/feed")
    card = page.locator(f'a[href="/photos/{photo_id}"]')
    empty = page.get_by_text("Your feed is empty.", exact=False)
    for _ in range(30):
        expect(card.or_(empty).first).to_be_visible()  # the first page has loaded
        if card.count():
            break
        page.wait_for_timeout(1000)
        page.reload()
    expect(card).to_be_visible()
    return card


def box_in_frame(page: Page, selector: str) -> list[float]:
    """The element's box as fractions of the edit preview's frame: [left, top, width, height]."""
    return page.evaluate("""selector => {
        const frame = document.querySelector('.edit-frame').getBoundingClientRect();
        const box = document.querySelector(selector).getBoundingClientRect();
        return [(box.left - frame.left) / frame.width, (box.top - frame.top) / frame.height,
                box.width / frame.width, box.height / frame.height].map(v => Math.round(v * 100) / 100);
    }""", selector)


def test_two_people_share_like_edit_and_delete_a_photo(new_page, shot, tmp_path):
    # Given two new people, Alice and Bob, each in their own browser
    alice_name, bob_name = f"alice_{uuid.uuid4().hex[:8]}", f"bob_{uuid.uuid4().hex[:8]}"
    alice, bob = new_page(), new_page()
    sign_up(alice, alice_name)
    shot(alice, "01-feed-empty")
    sign_up(bob, bob_name)

    # And Bob follows Alice from her profile (the fan-out and the follow backfill both fill feeds)
    bob.goto(f"/users/{alice_name}")
    expect(bob.get_by_role("heading", name=alice_name)).to_be_visible()
    expect(bob.get_by_text("No photos yet.")).to_be_visible()
    bob.get_by_role("button", name="Follow", exact=True).click()
    expect(bob.get_by_role("button", name="Unfollow", exact=True)).to_be_visible()
    expect(bob.get_by_role("link", name="1 follower")).to_be_visible()
    bob.get_by_role("link", name="1 follower").click()
    expect(bob.get_by_role("link", name=f"@{bob_name}")).to_be_visible()
    shot(bob, "02-followers")

    # When Alice uploads a photo: a progress bar, then the processed thumbnail
    photo_id = upload(alice, jpeg(tmp_path / "beach.jpg"), "Sunset at the beach")
    shot(alice, "03-upload-ready")
    bob.goto(f"/users/{alice_name}")
    expect(bob.get_by_role("link", name="Sunset at the beach")).to_be_visible()
    shot(bob, "03-profile-following")

    # Then the photo reaches Bob's feed (fan-out is asynchronous) and he likes it
    card = feed_shows(bob, photo_id)
    image_painted(bob, ".card img")
    shot(bob, "04-feed")
    card.click()
    expect(bob).to_have_url(re.compile(f"/photos/{photo_id}$"))
    bob.get_by_role("button", name="Like", exact=True).click()
    expect(bob.get_by_role("button", name="Unlike", exact=True)).to_be_visible()
    expect(bob.get_by_text("1 like", exact=True)).to_be_visible()
    shot(bob, "05-photo-liked")
    assert bob.get_by_role("button", name="Delete photo").count() == 0  # not the owner

    # And Carol, who follows Alice only now, finds the photo Alice had already posted in her feed
    carol = new_page()
    sign_up(carol, f"carol_{uuid.uuid4().hex[:8]}")
    carol.goto(f"/users/{alice_name}")
    carol.get_by_role("button", name="Follow", exact=True).click()
    expect(carol.get_by_role("button", name="Unfollow", exact=True)).to_be_visible()
    feed_shows(carol, photo_id)

    # When Alice crops her photo to its top-left quarter
    alice.goto(f"/photos/{photo_id}")
    expect(alice.get_by_text("1 like", exact=True)).to_be_visible()
    hero = alice.locator("picture.hero img")
    assert (hero.get_attribute("width"), hero.get_attribute("height")) != ("800", "600")
    alice.get_by_text("Edit photo").click()
    alice.get_by_label("Crop width").fill("800")
    alice.get_by_label("Crop height").fill("600")
    shot(alice, "06-edit-preview")
    alice.get_by_role("button", name="Apply edits").click()

    # Then the page shows the new version at the cropped size
    expect(alice.locator("#status")).to_have_text("Edits applied: showing the new version.", timeout=PROCESSING_TIMEOUT)
    expect(hero).to_have_attribute("width", "800")
    expect(hero).to_have_attribute("height", "600")
    image_painted(alice, "picture.hero img")
    shot(alice, "07-edited")

    # When she then crops the original's bottom-right quarter (outside the current 800x600 version)
    alice.get_by_text("Edit photo").click()
    expect(alice.get_by_text("Crop (pixels of the original 1600×1200 photo)")).to_be_visible()
    expect(alice.get_by_label("Crop width")).to_have_value("800")  # the form starts from the current crop
    expect(alice.get_by_label("Crop X")).to_have_value("0")
    alice.get_by_label("Crop X").fill("800")
    alice.get_by_label("Crop Y").fill("600")
    # Then the preview draws the box over the frame's bottom-right quarter, the current version in its top-left
    alice.wait_for_function("() => document.querySelector('.crop-box').classList.contains('active')")
    assert box_in_frame(alice, ".crop-box") == [0.5, 0.5, 0.5, 0.5]
    assert box_in_frame(alice, ".edit-current") == [0.0, 0.0, 0.5, 0.5]
    shot(alice, "07b-second-crop-preview")
    alice.get_by_role("button", name="Apply edits").click()
    # And the new version is that quarter of the original, at the size she drew
    expect(alice.locator("#status")).to_have_text("Edits applied: showing the new version.", timeout=PROCESSING_TIMEOUT)
    expect(hero).to_have_attribute("width", "800")
    alice.get_by_text("Edit photo").click()
    expect(alice.get_by_label("Crop X")).to_have_value("800")
    expect(alice.get_by_label("Crop Y")).to_have_value("600")

    # When she deletes it, it is gone from her profile
    alice.get_by_role("button", name="Delete photo").click()
    alice.get_by_role("button", name="Yes, delete it").click()
    expect(alice).to_have_url(re.compile(f"/users/{alice_name}$"))
    expect(alice.get_by_text("You have not posted any photos yet.")).to_be_visible()
    shot(alice, "08-profile-after-delete")

    # And the key steps work on a 375 px wide phone
    phone_alice = new_page(375, 800)
    log_in(phone_alice, alice_name)
    no_horizontal_scroll(phone_alice)
    phone_id = upload(phone_alice, jpeg(tmp_path / "phone.jpg", 900, 1200), "Portrait from my phone")
    no_horizontal_scroll(phone_alice)
    shot(phone_alice, "09-phone-upload")
    phone_alice.get_by_role("link", name="View photo").click()
    image_painted(phone_alice, "picture.hero img")
    no_horizontal_scroll(phone_alice)
    shot(phone_alice, "10-phone-photo")

    phone_bob = new_page(375, 800)
    log_in(phone_bob, bob_name)
    phone_bob.goto(f"/users/{alice_name}")
    expect(phone_bob.get_by_role("button", name="Unfollow", exact=True)).to_be_visible()
    expect(phone_bob.get_by_role("link", name="Portrait from my phone")).to_be_visible()
    no_horizontal_scroll(phone_bob)
    shot(phone_bob, "11-phone-profile")
    phone_bob.goto(f"/photos/{phone_id}")
    phone_bob.get_by_role("button", name="Like", exact=True).click()
    expect(phone_bob.get_by_role("button", name="Unlike", exact=True)).to_be_visible()
    shot(phone_bob, "12-phone-liked")

    # And logging out ends the session: protected pages send you to log in
    phone_bob.get_by_role("button", name="Log out").click()
    expect(phone_bob).to_have_url(re.compile(r"/login$"))
    phone_bob.goto("/feed")
    expect(phone_bob).to_have_url(re.compile(r"/login\?next=%2Ffeed$"))


def test_log_out_everywhere_ends_the_session_on_every_device(new_page, site_url):
    # Given one person signed in on a laptop and on a phone
    import json
    import urllib.error
    import urllib.request

    name = f"e{uuid.uuid4().hex[:10]}"
    laptop, phone = new_page(), new_page(375, 812)
    sign_up(laptop, name)
    log_in(phone, name)
    phone_token = phone.evaluate("JSON.parse(sessionStorage.getItem('photoscale.session')).access_token")
    # When the laptop logs out everywhere from the profile page
    laptop.get_by_role("link", name="Profile").click()
    laptop.get_by_role("button", name="Log out everywhere", exact=True).click()
    # Then the laptop is at the login page, signed out
    expect(laptop).to_have_url(re.compile(r"/login$"))
    expect(laptop.get_by_role("link", name="Sign up")).to_be_visible()
    # And the phone's token is refused by the API
    request = urllib.request.Request(f"{site_url}/api/me", headers={"Authorization": f"Bearer {phone_token}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    assert json.loads(refused.value.read())["error"]["code"] == "unauthorized"
    # And signing in again works
    log_in(laptop, name)


def test_a_new_user_downloads_their_data_and_deletes_their_account_by_keyboard_at_375px(new_page, site_url):
    import urllib.request

    # Given a new user on a 375 px phone, on their own profile
    name = f"d{uuid.uuid4().hex[:10]}"
    phone = new_page(375, 812)
    sign_up(phone, name)
    phone.get_by_role("link", name="Profile").click()
    expect(phone.get_by_role("heading", name="Your data")).to_be_visible()
    no_horizontal_scroll(phone)
    # When they ask for their data (keyboard only)
    phone.get_by_role("button", name="Download my data").focus()
    phone.keyboard.press("Enter")
    # Then a download link appears once the zip is ready, and it serves a zip
    link = phone.get_by_role("link", name="Download the zip")
    expect(link).to_be_visible(timeout=PROCESSING_TIMEOUT)
    href = link.get_attribute("href")
    with urllib.request.urlopen(href if href.startswith("http") else site_url + href, timeout=30) as response:
        assert response.read(2) == b"PK"
    # When they open "Delete account", read the warning and confirm with their password
    phone.get_by_role("button", name="Delete account").focus()
    phone.keyboard.press("Enter")
    expect(phone.get_by_text("This cannot be undone.")).to_be_visible()
    expect(phone.get_by_label("Your password")).to_be_focused()
    phone.keyboard.type(PASSWORD)
    phone.keyboard.press("Enter")
    no_horizontal_scroll(phone)
    # Then the erasure runs to the end and they are signed out on the home page
    expect(phone.get_by_role("status")).to_have_text("Your account and all its data have been deleted.",
                                                    timeout=PROCESSING_TIMEOUT)
    expect(phone.get_by_role("link", name="Log in")).to_be_visible()
    # And the profile is gone (asked outside the browser: a 404 there counts as a page problem)
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as gone:
        urllib.request.urlopen(f"{site_url}/api/users/{name}", timeout=10)
    assert gone.value.code == 404

"""Evidence in a real browser against a real stack (Daphne, Celery worker, tus, ffmpeg):

(a) alice sends a photo and a short video from her phone-sized chat, sees their progress (and pauses one),
    the agent sees the thumbnails arrive live, plays the video and opens the gallery's lightbox;
(b) a voice note recorded on Chromium's fake microphone reaches the agent as audio that plays; sliding away
    throws a recording away;
(c) a file the server refuses shows the server's reason, in the buyer's language, in the composer (and the good
    files of the same selection are still sent);
and: an upload cut by a reload goes on from the server's offset; a processing failure shows its reason and a retry;
drag-and-drop and paste; the order card and the product card.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from django.utils import translation
from django.utils.translation import gettext
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from media.models import Attachment, AttachmentStatus, Upload
from messaging.models import Message
from tests import factories
from tests.e2e.conftest import log_in
from tests.media import samples
from tests.media.samples import SVG_WITH_SCRIPT
from tickets import services as ticket_services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def photo(path: Path) -> Path:
    """A 1200x900 JPEG with something to see: stripes and a label."""
    image = Image.new("RGB", (1200, 900), (236, 112, 40))
    draw = ImageDraw.Draw(image)
    for x in range(0, 1200, 120):
        draw.rectangle([x, 0, x + 60, 900], fill=(214, 40, 40))
    draw.rectangle([300, 300, 900, 600], fill=(250, 250, 250))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    path.write_bytes(out.getvalue())
    return path


def video(path: Path, *, seconds: int = 3) -> Path:
    """A short H.264/AAC MP4 (ffmpeg test pattern and tone), a few hundred KB: its progress shows when throttled."""
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc=size=640x360:rate=25:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "2500k", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", "-movflags", "+faststart", str(path),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    return path


def claimed_ticket() -> Any:
    alice = factories.buyer(username="alice", first_name="Alice")
    agent = factories.agent(username="agent", first_name="Wei")
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    ticket_services.claim_ticket(ticket_id=ticket.pk, agent=agent)
    return ticket


def slow_uploads(context: Any, page: Any, *, bytes_per_second: int) -> None:
    """Throttle the page's uploads (Chrome DevTools network emulation), so progress can be watched."""
    session = context.new_cdp_session(page)
    session.send("Network.enable")
    session.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": bytes_per_second},
    )


def wait_playing(page: Any, selector: str, *, seconds: float = 0.5) -> dict[str, float]:
    """Play the first element matching `selector` (muted) and wait until its time has advanced."""
    page.locator(selector).first.evaluate("m => { m.muted = true; return m.play(); }")
    page.wait_for_function(
        "([s, t]) => { const m = document.querySelector(s); return m && m.readyState >= 2 && m.currentTime > t; }",
        arg=[selector, seconds],
        timeout=15000,
    )
    return page.locator(selector).first.evaluate("m => ({readyState: m.readyState, currentTime: m.currentTime})")


def test_photo_and_video_arrive_with_progress_and_the_agent_plays_them(live_stack, browser, screenshot, tmp_path):
    ticket = claimed_ticket()
    jpeg = photo(tmp_path / "颜色对比.jpg")
    mp4 = video(tmp_path / "parcel.mp4")

    buyer_context = browser.new_context(locale="zh-CN", viewport=PHONE)
    agent_context = browser.new_context(locale="zh-CN", viewport=DESKTOP)
    buyer, agent = buyer_context.new_page(), agent_context.new_page()
    log_in(buyer, live_stack, "alice")
    log_in(agent, live_stack, "agent")
    buyer.goto(f"{live_stack.url}/refunds/{ticket.pk}/")
    agent.goto(f"{live_stack.url}/console/tickets/{ticket.pk}/")
    expect(agent.get_by_test_id("evidence-empty")).to_be_visible()

    slow_uploads(buyer_context, buyer, bytes_per_second=300 * 1024)
    buyer.get_by_test_id("attach-input").set_input_files([str(jpeg), str(mp4)])
    tiles = buyer.get_by_test_id("upload-tile")
    expect(tiles).to_have_count(2)
    video_tile = tiles.filter(has_text="parcel.mp4")
    # "上传中 n%" with its own bar.
    expect(video_tile.get_by_test_id("upload-label")).to_contain_text(re.compile(r"上传中 \d+%"))
    buyer.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=upload-progress]')].some(p => p.value > 0 && p.value < 100)"
    )
    buyer.get_by_test_id("chat-input").scroll_into_view_if_needed()
    screenshot(buyer, "evidence-composer-progress")

    # Pause and resume: the upload goes on from the server's offset.
    video_tile.get_by_test_id("upload-pause").click()
    expect(video_tile).to_have_attribute("data-state", "paused")
    expect(video_tile.get_by_test_id("upload-label")).to_contain_text("已暂停")
    video_tile.get_by_test_id("upload-resume").click()
    expect(video_tile).to_have_attribute("data-state", re.compile("uploading|complete"))

    # Both arrive, the message is sent with them, and it is processed: thumbnail, poster.
    message = buyer.get_by_test_id("message").filter(has=buyer.get_by_test_id("attachment"))
    expect(message).to_have_attribute("data-seq", re.compile(r"^\d+$"), timeout=30000)
    expect(message.get_by_test_id("attachment")).to_have_count(2)
    expect(message.get_by_test_id("attachment-image").locator("img")).to_be_visible(timeout=30000)
    expect(message.get_by_test_id("attachment-video")).to_be_visible(timeout=30000)
    expect(message).to_have_attribute("data-status", re.compile("sent|delivered|read"))

    # The agent saw it arrive live: thumbnail, video with its poster, the gallery.
    agent_message = agent.get_by_test_id("message").filter(has=agent.get_by_test_id("attachment"))
    thumbnail = agent_message.get_by_test_id("attachment-image").locator("img")
    expect(thumbnail).to_be_visible(timeout=30000)
    expect(thumbnail).to_have_attribute("src", re.compile(r"/attachments/\d+/thumbnail_small$"))
    agent.wait_for_function(
        "() => { const i = document.querySelector('[data-testid=attachment-image] img');"
        " return i && i.naturalWidth > 0; }"
    )
    agent_video = agent_message.get_by_test_id("attachment-video")
    expect(agent_video).to_have_attribute("poster", re.compile(r"/attachments/\d+/poster$"))
    state = wait_playing(agent, "[data-testid=attachment-video]")
    assert state["readyState"] >= 2
    assert state["currentTime"] > 0.5

    stored = {a.kind: a for a in Attachment.objects.filter(ticket=ticket)}
    assert set(stored) == {"image", "video"}
    assert all(a.status == AttachmentStatus.READY for a in stored.values())
    assert stored["image"].sha256 == hashlib.sha256(jpeg.read_bytes()).hexdigest()
    assert stored["video"].sha256 == hashlib.sha256(mp4.read_bytes()).hexdigest()
    assert stored["video"].duration_ms
    assert stored["video"].duration_ms >= 2500
    carried = Message.objects.get(conversation=ticket.conversation, has_attachments=True)
    assert sorted(carried.attachments.values_list("pk", flat=True)) == sorted(a.pk for a in stored.values())

    gallery = agent.get_by_test_id("evidence-gallery")
    expect(gallery.get_by_test_id("evidence-item")).to_have_count(2, timeout=15000)
    expect(gallery.get_by_test_id("evidence-image").locator("img")).to_be_visible()
    expect(gallery).to_contain_text(stored["image"].sha256)
    download = gallery.get_by_test_id("evidence-download").first
    expect(download).to_have_attribute("href", f"/attachments/{stored['image'].pk}/original?download=1")
    screenshot(agent, "evidence-agent-chat")
    gallery.scroll_into_view_if_needed()
    screenshot(agent, "evidence-gallery")

    # Lightbox: the photo, zoomed by a click; then the video plays in it.
    gallery.get_by_test_id("evidence-image").click()
    lightbox = agent.get_by_test_id("lightbox")
    expect(lightbox).to_be_visible()
    image = lightbox.get_by_test_id("lightbox-image")
    expect(image).to_be_visible()
    image.click()
    expect(image).to_have_attribute("data-zoom", "2.5")
    expect(lightbox.get_by_test_id("lightbox-download")).to_have_attribute(
        "href", f"/attachments/{stored['image'].pk}/original?download=1"
    )
    screenshot(agent, "evidence-lightbox")
    lightbox.get_by_test_id("lightbox-close").click()
    gallery.get_by_test_id("evidence-video").click()
    state = wait_playing(agent, "[data-testid=lightbox-video]")
    assert state["currentTime"] > 0.5
    lightbox.get_by_test_id("lightbox-close").click()

    # The buyer's chat; a click on the photo shows it full size.
    screenshot(buyer, "evidence-buyer-chat")
    buyer.get_by_test_id("attachment-image").click()
    expect(buyer.get_by_test_id("lightbox-image")).to_be_visible()
    buyer.get_by_test_id("lightbox-close").click()

    # A reload renders the same bubble from the server.
    buyer.reload()
    expect(buyer.get_by_test_id("attachment")).to_have_count(2)
    expect(buyer.get_by_test_id("attachment-video")).to_have_attribute("poster", re.compile("poster$"))
    buyer_context.close()
    agent_context.close()


def test_voice_note_recorded_on_the_fake_microphone_reaches_the_agent(live_stack, browser, screenshot):
    ticket = claimed_ticket()
    buyer_context = browser.new_context(locale="zh-CN", viewport=PHONE, permissions=["microphone"])
    agent_context = browser.new_context(locale="zh-CN", viewport=DESKTOP)
    buyer, agent = buyer_context.new_page(), agent_context.new_page()
    log_in(buyer, live_stack, "alice")
    log_in(agent, live_stack, "agent")
    buyer.goto(f"{live_stack.url}/refunds/{ticket.pk}/")
    agent.goto(f"{live_stack.url}/console/tickets/{ticket.pk}/")
    record = buyer.get_by_test_id("record-button")

    # Slide away while holding: thrown away, nothing is sent.
    record.hover()
    buyer.mouse.down()
    expect(buyer.get_by_test_id("recording")).to_be_visible()
    buyer.wait_for_timeout(1200)
    buyer.mouse.move(10, 10, steps=5)
    expect(buyer.get_by_test_id("recording")).to_be_hidden()
    buyer.mouse.up()

    # Hold, watch the timer, release: sent.
    record.hover()
    buyer.mouse.down()
    timer = buyer.get_by_test_id("recording-timer")
    expect(timer).to_have_text("0:02", timeout=5000)
    screenshot(buyer, "evidence-voice-recording")
    buyer.wait_for_timeout(600)
    buyer.mouse.up()
    expect(buyer.get_by_test_id("recording")).to_be_hidden()

    audio = agent.get_by_test_id("attachment-audio")
    expect(audio).to_be_visible(timeout=30000)
    state = wait_playing(agent, "[data-testid=attachment-audio]")
    assert state["currentTime"] > 0.5
    screenshot(agent, "evidence-agent-voice")

    voice = Attachment.objects.get(ticket=ticket)
    assert (voice.kind, voice.content_type, voice.status) == ("audio", "audio/webm", AttachmentStatus.READY)
    assert voice.duration_ms is not None
    assert 2000 <= voice.duration_ms <= 6000
    assert voice.filename.startswith("语音")
    assert voice.filename.endswith(".webm")
    assert Upload.objects.filter(ticket=ticket).count() == 1  # the thrown-away recording never left the browser
    assert Message.objects.filter(conversation=ticket.conversation, has_attachments=True).count() == 1
    expect(buyer.get_by_test_id("attachment-audio")).to_be_visible()
    buyer_context.close()
    agent_context.close()


@pytest.mark.parametrize(
    ("name", "content", "refusal_msgid"),
    [
        (
            "drawing.svg",
            SVG_WITH_SCRIPT,
            "SVG and HTML files cannot be sent because they can contain scripts. Send a screenshot instead.",
        ),
        # A Windows program renamed to look like a photo.
        ("photo.jpg", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + bytes(4000), "Programs and scripts cannot be sent."),
    ],
)
def test_a_refused_file_shows_the_servers_reason_in_the_buyers_language(
    live_stack, browser, screenshot, tmp_path, name, content, refusal_msgid
):
    ticket = claimed_ticket()
    bad = tmp_path / name
    bad.write_bytes(content)
    context = browser.new_context(locale="zh-CN", viewport=PHONE)
    page = context.new_page()
    log_in(page, live_stack, "alice")
    page.goto(f"{live_stack.url}/refunds/{ticket.pk}/")
    page.get_by_test_id("attach-input").set_input_files(str(bad))

    tile = page.get_by_test_id("upload-tile")
    expect(tile).to_have_attribute("data-state", "refused", timeout=15000)
    with translation.override("zh-hans"):
        expected = gettext(refusal_msgid)
    assert re.search(r"[\u4e00-\u9fff]", expected), "the refusal is translated"
    # The server's own words, in the page's language, in the composer and on the file's tile.
    expect(page.get_by_test_id("chat-error")).to_contain_text(f"{name}: {expected}")
    expect(tile.get_by_test_id("upload-label")).to_contain_text(expected)
    if name.endswith(".svg"):
        page.get_by_test_id("chat-error").scroll_into_view_if_needed()
        screenshot(page, "evidence-refused")
    # Nothing half-written stays, and no message was sent.
    assert not Attachment.objects.filter(ticket=ticket).exists()
    assert not Message.objects.filter(conversation=ticket.conversation, has_attachments=True).exists()
    # The tile goes away when dismissed.
    tile.get_by_test_id("upload-cancel").click()
    expect(page.get_by_test_id("upload-tile")).to_have_count(0)
    context.close()


def test_an_upload_cut_by_a_reload_goes_on_from_the_servers_offset(live_stack, browser, screenshot, tmp_path):
    ticket = claimed_ticket()
    big = tmp_path / "damage.jpg"
    big.write_bytes(samples.jpeg(width=900, height=800, noise=True))  # about 2 MB that hardly compresses
    context = browser.new_context(locale="zh-CN", viewport=PHONE)
    page = context.new_page()
    patches: list[str] = []
    page.on(
        "request",
        lambda request: patches.append(request.headers.get("upload-offset", "")) if request.method == "PATCH" else None,
    )
    log_in(page, live_stack, "alice")
    page.goto(f"{live_stack.url}/refunds/{ticket.pk}/")
    # Small chunks, a slow network: the reload comes when part of the file is on the server.
    page.locator("[data-composer]").evaluate("form => { form.dataset.uploadChunkSize = String(256 * 1024); }")
    slow_uploads(context, page, bytes_per_second=400 * 1024)
    page.get_by_test_id("attach-input").set_input_files(str(big))
    deadline = time.monotonic() + 30
    while Upload.objects.filter(ticket=ticket, offset__gte=512 * 1024).count() == 0:
        assert time.monotonic() < deadline, "the upload did not start"
        time.sleep(0.1)
    page.reload()

    upload = Upload.objects.get(ticket=ticket)
    kept = upload.offset
    assert 0 < kept < upload.length
    tile = page.get_by_test_id("upload-tile")
    expect(tile).to_have_attribute("data-state", "interrupted")
    expect(tile.get_by_test_id("upload-label")).to_contain_text("重新选择同一个文件")
    page.get_by_test_id("chat-input").scroll_into_view_if_needed()
    screenshot(page, "evidence-upload-interrupted")

    patches.clear()
    with page.expect_file_chooser() as chooser:
        tile.get_by_test_id("upload-choose-again").click()
    chooser.value.set_files(str(big))
    attachment = page.get_by_test_id("attachment")
    expect(attachment).to_have_count(1, timeout=30000)
    # The first byte sent after the reload is the first the server did not have.
    assert int(patches[0]) >= kept
    stored = Attachment.objects.get(ticket=ticket)
    assert stored.upload_id == upload.pk
    assert stored.sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
    assert Upload.objects.filter(ticket=ticket).count() == 1
    context.close()


def test_cards_order_shared_by_the_buyer_product_link_by_the_agent(live_stack, browser, screenshot):
    ticket = claimed_ticket()
    buyer_context = browser.new_context(locale="zh-CN", viewport=PHONE)
    agent_context = browser.new_context(locale="zh-CN", viewport=DESKTOP)
    buyer, agent = buyer_context.new_page(), agent_context.new_page()
    log_in(buyer, live_stack, "alice")
    log_in(agent, live_stack, "agent")
    buyer.goto(f"{live_stack.url}/refunds/{ticket.pk}/")
    agent.goto(f"{live_stack.url}/console/tickets/{ticket.pk}/")

    buyer.get_by_test_id("share-order").click()
    order_card = agent.get_by_test_id("order-card-message")
    expect(order_card).to_contain_text(ticket.order.order_no)
    expect(order_card).to_contain_text("¥87.00")

    agent.get_by_test_id("product-card-details").locator("summary").click()
    agent.get_by_test_id("product-title").fill("纯棉T恤 白色 L 码")
    agent.get_by_test_id("product-url").fill("https://shop.example/p/42")
    agent.get_by_test_id("product-price").fill("59.90")
    agent.get_by_test_id("product-send").click()
    product = buyer.get_by_test_id("product-card-message")
    expect(product).to_contain_text("纯棉T恤 白色 L 码")
    expect(product).to_contain_text("¥59.90")
    expect(product).to_have_attribute("href", "https://shop.example/p/42")
    buyer.get_by_test_id("chat-input").scroll_into_view_if_needed()
    screenshot(buyer, "evidence-cards-buyer")

    kinds = list(
        Message.objects.filter(conversation=ticket.conversation).order_by("seq").values_list("kind", flat=True)
    )
    assert kinds[-2:] == ["order_card", "product_card"]
    buyer.reload()
    expect(buyer.get_by_test_id("order-card-message")).to_contain_text(ticket.order.order_no)
    expect(buyer.get_by_test_id("product-card-message")).to_contain_text("¥59.90")
    buyer_context.close()
    agent_context.close()


def test_the_good_files_of_a_selection_are_sent_when_one_is_refused(live_stack, browser, tmp_path):
    ticket = claimed_ticket()
    good = photo(tmp_path / "good.jpg")
    bad = tmp_path / "script.svg"
    bad.write_bytes(SVG_WITH_SCRIPT)
    context = browser.new_context(locale="zh-CN", viewport=PHONE)
    page = context.new_page()
    log_in(page, live_stack, "alice")
    page.goto(f"{live_stack.url}/refunds/{ticket.pk}/")
    page.get_by_test_id("attach-input").set_input_files([str(good), str(bad)])

    sent = page.get_by_test_id("message").filter(has=page.get_by_test_id("attachment"))
    expect(sent).to_have_attribute("data-seq", re.compile(r"^\d+$"), timeout=30000)
    expect(sent.get_by_test_id("attachment")).to_have_count(1)
    expect(page.get_by_test_id("chat-error")).to_contain_text("script.svg")
    expect(page.get_by_test_id("upload-tile")).to_have_count(0)  # the sent message replaced the tiles
    carried = Message.objects.get(conversation=ticket.conversation, has_attachments=True)
    assert [a.filename for a in carried.attachments.all()] == ["good.jpg"]
    assert Attachment.objects.filter(ticket=ticket).count() == 1
    context.close()


def test_a_processing_failure_shows_the_reason_and_a_retry(live_stack, browser, screenshot, tmp_path):
    ticket = claimed_ticket()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(samples.mp4())  # boxes that tile the file around bytes that are no video
    context = browser.new_context(locale="zh-CN", viewport=PHONE)
    page = context.new_page()
    log_in(page, live_stack, "alice")
    page.goto(f"{live_stack.url}/refunds/{ticket.pk}/")
    page.get_by_test_id("attach-input").set_input_files(str(broken))

    failed = page.get_by_test_id("attachment-failed")
    expect(failed).to_be_visible(timeout=30000)
    attachment = Attachment.objects.get(ticket=ticket)
    assert attachment.status == AttachmentStatus.FAILED
    expect(failed).to_contain_text(attachment.failure_reason)
    assert re.search(r"[\u4e00-\u9fff]", attachment.failure_reason)
    page.get_by_test_id("chat-input").scroll_into_view_if_needed()
    screenshot(page, "evidence-processing-failed")

    with page.expect_response(lambda r: r.url.endswith(f"/attachments/{attachment.pk}/retry")) as retried:
        failed.get_by_test_id("attachment-retry").click()
    assert retried.value.status == 202
    # Processed again (the same bytes fail again), and the bubble follows the frames back to "failed".
    expect(page.get_by_test_id("attachment-failed")).to_be_visible(timeout=30000)
    expect(page.get_by_test_id("attachment-retry")).to_be_enabled()
    context.close()


DROP_AND_PASTE = """async ([how]) => {
  const canvas = document.createElement("canvas");
  canvas.width = 320; canvas.height = 240;
  const g = canvas.getContext("2d");
  g.fillStyle = how === "drop" ? "#2563eb" : "#16a34a"; g.fillRect(0, 0, 320, 240);
  const blob = await new Promise(done => canvas.toBlob(done, "image/jpeg", 0.9));
  const data = new DataTransfer();
  data.items.add(new File([blob], how + ".jpg", { type: "image/jpeg" }));
  if (how === "drop") {
    const chat = document.querySelector("[data-chat]");
    chat.dispatchEvent(new DragEvent("dragenter", { dataTransfer: data, bubbles: true, cancelable: true }));
    const shown = !document.querySelector("[data-drop-hint]").hidden;
    chat.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
    return shown;
  }
  const box = document.querySelector("[data-testid=chat-input]");
  box.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
  return true;
}"""


def test_files_dropped_on_the_chat_or_pasted_into_the_message_box_are_sent(live_stack, browser):
    ticket = claimed_ticket()
    context = browser.new_context(locale="zh-CN", viewport=DESKTOP)
    page = context.new_page()
    log_in(page, live_stack, "alice")
    page.goto(f"{live_stack.url}/refunds/{ticket.pk}/")

    assert page.evaluate(DROP_AND_PASTE, ["drop"]) is True  # the drop hint showed while dragging
    expect(page.get_by_test_id("attachment-image")).to_have_count(1, timeout=30000)
    page.evaluate(DROP_AND_PASTE, ["paste"])
    expect(page.get_by_test_id("attachment-image")).to_have_count(2, timeout=30000)
    expect(page.locator("[data-drop-hint]")).to_be_hidden()
    names = sorted(Attachment.objects.filter(ticket=ticket).values_list("filename", flat=True))
    assert names == ["drop.jpg", "paste.jpg"]
    assert Message.objects.filter(conversation=ticket.conversation, has_attachments=True).count() == 2
    context.close()

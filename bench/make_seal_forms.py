#!/usr/bin/env python3
"""Synthesise labelled application forms, with and without a company seal (公章), to tune and measure
`daemon.intake.seal` on forms it has never seen.

    python bench/make_seal_forms.py OUT_DIR --seed 7 --count 200

writes `OUT_DIR/docs/form-NNN.docx` and `OUT_DIR/labels.json` in the format of the office's sample set
(`../shared/seals/labels.json`: per file `seal`, `kind`, `company`, `variant`, `extras`, `seal_images`).
Kinds and looks follow that set's README: seals are thin red rings (38–45 mm, line 1–1.5 mm) with the
company's name along the upper arc, a star, usually a 13-digit code along the lower arc, sometimes an inner
ring or a horizontal title; rotated, unevenly inked, bright red to faded pink, multiplied over black text;
pages are scanned (A4 at 150 dpi, JPEG 55–70, skew, paper tone, grain, lid shadow), scanned in grey (some
with a copier's hard contrast) or photographed (perspective, uneven light, colour cast, shadow). Forms
without a seal carry the pictures that look most like one: red logos, 红头 headings, charts, product photos
with red machines and valve wheels, quality marks, unstamped scans and handwritten signatures.

The same seed gives the same files. Needs Pillow, numpy, python-docx and a CJK font (Debian:
fonts-noto-cjk or fonts-wqy-zenhei).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from docx import Document
from docx.shared import Mm, Pt, RGBColor
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_FILES = {
    "serif": [
        "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
        "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    ],
    "bold-serif": [
        "/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc",
        "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
        "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    ],
    "sans": [
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    ],
    "bold": [
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
        "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    ],
}
PAGE = (1240, 1754)  # A4 at 150 dpi
MM = 150 / 25.4

STAMPED = {"scan-full": 4, "scan-page": 4, "e-seal": 5, "grey-scan": 3, "photo": 4}
UNSTAMPED = {
    "none": 2,
    "red-logo": 3,
    "red-heading": 3,
    "chart": 3,
    "photo-product": 3,
    "quality-logo": 2,
    "unstamped-scan": 2,
    "signature": 2,
}

CITIES = [
    "济南",
    "青岛",
    "淄博",
    "枣庄",
    "东营",
    "烟台",
    "潍坊",
    "济宁",
    "泰安",
    "威海",
    "日照",
    "临沂",
    "德州",
    "聊城",
]
WORDS = ["明湖", "蓝海", "恒通", "宏达", "润丰", "齐力", "鲁中", "泉城", "天元", "金鼎", "华信", "博远", "正泰", "远航"]
TRADES = ["电子", "机械", "建材", "陶瓷", "化工", "环保科技", "生物科技", "船舶装备", "重工机械", "精密铸造", "新材料"]
FORMS = ["有限公司", "有限责任公司", "股份有限公司", "（集团）有限公司"]
TITLES = ["卓越绩效管理模式", "全员质量改进经验", "零缺陷质量文化建设", "供应链质量协同", "数字化质量管控实践"]
SEAL_TITLES = ["合同专用章", "财务专用章", "质量专用章"]
PARAGRAPH = (
    "企业始终坚持“质量第一、效益优先”的发展理念，建立了覆盖设计、采购、生产、检验、服务全过程的质量管理体系。"
    "通过开展质量诊断和对标提升，企业质量管理成熟度评价由三级提升至四级。近三年来，主要产品一次交验合格率由"
    "97.6%提升至99.3%，顾客满意度连续三年保持在95分以上。"
)
OPINION = (
    "本单位自愿申报2022年全省质量标杆，承诺所提交的申报材料内容真实、准确、完整，"
    "近三年未发生重大质量、安全、环境事故，无违法违规行为。如有不实，本单位愿承担相应责任。"
)


_fonts: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}


def font(kind: str, size: int) -> ImageFont.FreeTypeFont:
    key = (kind, size)
    if key not in _fonts:
        for path in FONT_FILES[kind]:
            if Path(path).exists():
                _fonts[key] = ImageFont.truetype(path, size)
                break
        else:
            raise SystemExit("no CJK font: apt-get install fonts-noto-cjk")
    return _fonts[key]


def company_name(rng: random.Random) -> str:
    return rng.choice(CITIES) + rng.choice(WORDS) + rng.choice(TRADES) + rng.choice(FORMS)


# -- the seal ------------------------------------------------------------------------------------------------


@dataclass
class SealLook:
    diameter: int
    colour: tuple[int, int, int]
    rotation: float
    code: bool
    inner_ring: bool
    aspect: float
    """Height over width: 1 for a round seal, about 0.7 for an oval one."""
    title: str | None
    weight: str
    unevenness: float
    specks: int


def seal_look(rng: random.Random, diameter: int) -> SealLook:
    colours = [(215, 25, 35), (200, 30, 45), (170, 20, 30), (225, 70, 80), (235, 120, 135), (240, 150, 165)]
    return SealLook(
        diameter=diameter,
        colour=rng.choice(colours),
        rotation=rng.uniform(-35, 35),
        code=rng.random() < 0.8,
        inner_ring=rng.random() < 0.15,
        aspect=rng.uniform(0.66, 0.8) if rng.random() < 0.1 else 1.0,
        title=rng.choice(SEAL_TITLES) if rng.random() < 0.2 else None,
        weight=rng.choice(["serif", "serif", "bold-serif"]),
        unevenness=rng.uniform(0.0, 0.6),
        specks=rng.randint(0, 60),
    )


def seal_alpha(rng: random.Random, company: str, look: SealLook) -> Image.Image:
    """The seal's ink as an 8-bit coverage mask (255 = full ink), square, `diameter` wide plus a margin."""
    scale = 2
    d = look.diameter * scale
    size = int(d * 1.08)
    c = size / 2
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    r = d / 2
    line = max(2, round(d * rng.uniform(1.0, 1.5) / 42))
    draw.ellipse((c - r, c - r, c + r, c + r), outline=255, width=line)
    if look.inner_ring:
        ri = r - line - d * 0.025
        draw.ellipse((c - ri, c - ri, c + ri, c + ri), outline=255, width=max(1, line // 3))
    star(draw, c, c, d * rng.uniform(0.11, 0.14), 255)
    glyph = round(d * rng.uniform(0.13, 0.16))
    span = min(270.0, len(company) * rng.uniform(17, 21) + 20)
    arc_text(
        image, company, c, c, r - line - glyph * 0.62, -span / 2, span / 2, glyph, outward=True, weight=look.weight
    )
    if look.code:
        digits = "".join(rng.choice("0123456789") for _ in range(13))
        small = round(d * 0.05)
        arc_text(image, digits, c, c, r - line - small * 0.75, 180 + 45, 180 - 45, small, outward=False, weight="serif")
    if look.title:
        title_font = font("serif", round(d * 0.075))
        draw.text((c, c + d * 0.2), look.title, font=title_font, fill=255, anchor="mm")
    if look.aspect < 1:  # an oval seal: the same drawing, squeezed
        squeezed = image.resize((size, round(size * look.aspect)), Image.Resampling.LANCZOS)
        image = Image.new("L", (size, size), 0)
        image.paste(squeezed, (0, (size - squeezed.height) // 2))
    image = image.rotate(look.rotation, resample=Image.Resampling.BICUBIC)
    image = image.resize((size // scale, size // scale), Image.Resampling.LANCZOS)
    return uneven(rng, image, look)


def star(draw: ImageDraw.ImageDraw, x: float, y: float, radius: float, fill: int) -> None:
    points = []
    for k in range(10):
        rr = radius if k % 2 == 0 else radius * 0.382
        angle = math.pi / 2 + k * math.pi / 5
        points.append((x + rr * math.cos(angle), y - rr * math.sin(angle)))
    draw.polygon(points, fill=fill)


def arc_text(
    image: Image.Image, text: str, cx: float, cy: float, radius: float, start: float, end: float, size: int,
    *, outward: bool, weight: str,
) -> None:  # fmt: skip
    """Characters along an arc, angles in degrees clockwise from the top; tops point out (or in)."""
    glyph_font = font(weight, size)
    n = len(text)
    pitch = math.radians(abs(end - start)) * radius / n
    narrow = max(4, min(size, round(pitch * 0.92)))
    for i, char in enumerate(text):
        angle = start + (end - start) * (i + 0.5) / n
        tile = Image.new("L", (size * 2, size * 2), 0)
        ImageDraw.Draw(tile).text((size, size), char, font=glyph_font, fill=255, anchor="mm")
        if narrow < size:  # seals squeeze long names into narrow characters
            tile = tile.resize((size * 2 * narrow // size, size * 2), Image.Resampling.LANCZOS)
            padded = Image.new("L", (size * 2, size * 2), 0)
            padded.paste(tile, ((size * 2 - tile.width) // 2, 0))
            tile = padded
        turn = -angle if outward else 180 - angle
        tile = tile.rotate(turn, resample=Image.Resampling.BICUBIC)
        theta = math.radians(angle)
        x = cx + radius * math.sin(theta) - size
        y = cy - radius * math.cos(theta) - size
        image.paste(255, (round(x), round(y)), tile)


def uneven(rng: random.Random, alpha: Image.Image, look: SealLook) -> Image.Image:
    """Lighter on one side, blotchy, with worn specks where the ink did not take."""
    a = np.asarray(alpha, dtype=np.float32) / 255
    h, w = a.shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    direction = rng.uniform(0, 2 * math.pi)
    ramp = (xx * math.cos(direction) + yy * math.sin(direction)) - 0.5
    field_ = 1 - look.unevenness * (ramp + 0.5)
    blotch = np.asarray(
        Image.fromarray((np.random.default_rng(rng.randrange(1 << 30)).random((6, 6)) * 255).astype(np.uint8)).resize(
            (w, h), Image.Resampling.BICUBIC
        ),
        dtype=np.float32,
    )
    field_ *= 1 - 0.35 * look.unevenness * blotch / 255
    a *= np.clip(field_, 0.25, 1)
    mask = Image.fromarray((a * 255).astype(np.uint8))
    draw = ImageDraw.Draw(mask)
    for _ in range(look.specks):
        x, y, s = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.5, 2.2)
        draw.ellipse((x - s, y - s, x + s, y + s), fill=0)
    return mask.filter(ImageFilter.GaussianBlur(0.6))


def stamp(page: Image.Image, alpha: Image.Image, colour: tuple[int, int, int], centre: tuple[int, int]) -> None:
    """Ink multiplied over the page, so black text under the seal stays black."""
    x, y = centre[0] - alpha.width // 2, centre[1] - alpha.height // 2
    box = (x, y, x + alpha.width, y + alpha.height)
    region = np.asarray(page.crop(box).convert("RGB"), dtype=np.float32)
    a = np.asarray(alpha, dtype=np.float32)[..., None] / 255
    ink = np.array(colour, dtype=np.float32) / 255
    region *= 1 - a + a * ink
    page.paste(Image.fromarray(region.clip(0, 255).astype(np.uint8)), box[:2])


def e_seal(rng: random.Random, company: str) -> Image.Image:
    """A transparent electronic seal, as the enterprise's software exports it."""
    look = seal_look(rng, rng.randint(420, 500))
    look.unevenness *= 0.5
    look.specks //= 3
    alpha = seal_alpha(rng, company, look)
    image = Image.new("RGBA", alpha.size, (*look.colour, 0))
    image.putalpha(alpha)
    return image


# -- pages ---------------------------------------------------------------------------------------------------


@dataclass
class Form:
    company: str
    title: str
    city: str
    date: str
    fields: dict[str, str] = field(default_factory=dict)


def new_form(rng: random.Random) -> Form:
    company = company_name(rng)
    day = rng.randint(1, 28)
    return Form(company, rng.choice(TITLES), company[:2], f"2022年6月{day}日")


def blank_page() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    page = Image.new("RGB", PAGE, "white")
    return page, ImageDraw.Draw(page)


def cover_page(form: Form) -> tuple[Image.Image, tuple[int, int]]:
    """The cover; returns where a seal goes (over 申报单位)."""
    page, draw = blank_page()
    draw.text((150, 200), "附件2", font=font("bold", 28), fill=(20, 20, 20))
    draw.text((620, 420), "2022年全省质量标杆", font=font("bold", 58), fill=(20, 20, 20), anchor="mm")
    draw.text((620, 510), "申 报 书", font=font("bold", 52), fill=(20, 20, 20), anchor="mm")
    rows = [("申报单位（盖章）：", form.company), ("质量标杆名称：", form.title)]
    rows += [("推荐单位：", f"{form.city}市工业和信息化局"), ("申报日期：", form.date)]
    for i, (label, value) in enumerate(rows):
        y = 900 + i * 95
        draw.text((200, y), label, font=font("serif", 30), fill=(25, 25, 25))
        x = 200 + draw.textlength(label, font=font("serif", 30))
        draw.text((x + 10, y), value, font=font("serif", 30), fill=(25, 25, 25))
        draw.line((x, y + 42, 1050, y + 42), fill=(30, 30, 30), width=2)
    draw.text((620, 1560), "山东省工业和信息化厅制", font=font("serif", 28), fill=(30, 30, 30), anchor="mm")
    draw.text((620, 1610), "二〇二二年五月", font=font("serif", 28), fill=(30, 30, 30), anchor="mm")
    return page, (int(x + 200), 915)


def table_page(rng: random.Random, form: Form) -> Image.Image:
    page, draw = blank_page()
    draw.text((150, 180), "一、申报单位基本情况", font=font("bold", 32), fill=(20, 20, 20))
    rows = [
        ("单位名称", form.company),
        ("统一社会信用代码", "9137" + "".join(rng.choice("0123456789") for _ in range(14))),
    ]
    rows += [("通讯地址", f"山东省{form.city}市高新区工业路{rng.randint(1, 500)}号"), ("法定代表人", "张伟")]
    rows += [("联系电话", f"1{rng.randint(3000000000, 9999999999)}"), ("质量标杆名称", form.title)]
    y = 250
    for label, value in rows:
        draw.rectangle((150, y, 1090, y + 60), outline=(30, 30, 30), width=2)
        draw.line((420, y, 420, y + 60), fill=(30, 30, 30), width=2)
        draw.text((165, y + 14), label, font=font("serif", 26), fill=(25, 25, 25))
        draw.text((435, y + 14), value, font=font("serif", 26), fill=(25, 25, 25))
        y += 60
    paragraph_lines(draw, PARAGRAPH * 2, 170, y + 40, 900, 26)
    return page


def paragraph_lines(draw: ImageDraw.ImageDraw, text: str, x: int, y: int, width: int, size: int) -> int:
    per_line = width // size
    for start in range(0, len(text), per_line):
        draw.text((x, y), text[start : start + per_line], font=font("serif", size), fill=(25, 25, 25))
        y += int(size * 1.7)
    return y


def opinion_page(form: Form) -> tuple[Image.Image, tuple[int, int], tuple[int, int]]:
    """申报单位意见; returns where the seal goes and where a signature goes."""
    page, draw = blank_page()
    draw.text((150, 180), "三、申报单位意见", font=font("bold", 32), fill=(20, 20, 20))
    draw.rectangle((150, 240, 1090, 1000), outline=(30, 30, 30), width=2)
    paragraph_lines(draw, OPINION, 200, 280, 840, 28)
    draw.text((560, 760), "法定代表人（签字）：", font=font("serif", 28), fill=(25, 25, 25))
    draw.text((560, 840), "申报单位（盖章）：", font=font("serif", 28), fill=(25, 25, 25))
    draw.text((700, 920), form.date, font=font("serif", 28), fill=(25, 25, 25))
    draw.text((150, 1080), "四、推荐单位意见", font=font("bold", 32), fill=(20, 20, 20))
    draw.rectangle((150, 1140, 1090, 1600), outline=(30, 30, 30), width=2)
    draw.text((190, 1180), "（由市工业和信息化局填写推荐意见）", font=font("serif", 26), fill=(25, 25, 25))
    draw.text((620, 1480), "推荐单位（盖章）：", font=font("serif", 26), fill=(25, 25, 25))
    return page, (790, 860), (840, 770)


def red_heading_page(rng: random.Random, form: Form) -> Image.Image:
    """A 红头 letter: red organisation name, red rule, black body, no seal."""
    page, draw = blank_page()
    red = rng.choice([(200, 30, 35), (220, 40, 40), (190, 20, 30)])
    draw.text((620, 230), f"{form.company}文件", font=font("bold", 50), fill=red, anchor="mm")
    draw.text(
        (620, 330),
        f"{form.company[:2]}字〔2022〕{rng.randint(1, 99)}号",
        font=font("serif", 26),
        fill=(30, 30, 30),
        anchor="mm",
    )
    draw.line((130, 370, 1110, 370), fill=red, width=rng.choice([3, 4, 6]))
    if rng.random() < 0.5:
        draw.line((130, 380, 1110, 380), fill=red, width=2)
    draw.text((620, 460), "关于申报2022年全省质量标杆的请示", font=font("bold", 36), fill=(20, 20, 20), anchor="mm")
    y = paragraph_lines(draw, PARAGRAPH * 2, 170, 540, 900, 28)
    draw.text((760, y + 120), form.company, font=font("serif", 26), fill=(25, 25, 25))
    draw.text((820, y + 170), form.date, font=font("serif", 26), fill=(25, 25, 25))
    if rng.random() < 0.5:
        draw.text((170, y + 260), "（此件公开发布）", font=font("serif", 26), fill=red)
    return page


def signature(draw: ImageDraw.ImageDraw, rng: random.Random, x: int, y: int) -> None:
    """A handwritten scrawl: a few loops and a long tail, in blue-black ink."""
    ink = rng.choice([(30, 40, 120), (20, 20, 30), (40, 50, 90), (30, 40, 120), (20, 20, 30), (190, 40, 50)])
    points = []
    t = 0.0
    for _ in range(rng.randint(40, 70)):
        t += rng.uniform(0.15, 0.35)
        points.append((x + t * 18 + 12 * math.cos(t * 3.1), y + 22 * math.sin(t * 2.3 + rng.uniform(-0.3, 0.3))))
    draw.line(points, fill=ink, width=rng.randint(2, 4), joint="curve")


# -- how a page arrives --------------------------------------------------------------------------------------


def scan(rng: random.Random, page: Image.Image, *, grey: bool) -> Image.Image:
    """Printed and scanned: paper tone, skew, grain, sometimes a lid shadow; grey scans maybe hard contrast."""
    tone = np.array(rng.choice([(250, 248, 240), (246, 244, 236), (248, 240, 238), (240, 244, 240), (245, 245, 245)]))
    a = np.asarray(page, dtype=np.float32) * tone / 255
    a += np.random.default_rng(rng.randrange(1 << 30)).normal(0, rng.uniform(2, 6), a.shape[:2])[..., None]
    if rng.random() < 0.4:
        width = rng.randint(20, 90)
        shade = np.clip(1 - np.arange(PAGE[0]) / width, 0, 1) * rng.uniform(0.2, 0.5)
        if rng.random() < 0.5:
            shade = shade[::-1]
        a *= 1 - shade[None, :, None]
    image = Image.fromarray(a.clip(0, 255).astype(np.uint8))
    image = image.rotate(
        rng.uniform(-1.5, 1.5), resample=Image.Resampling.BICUBIC, fillcolor=tuple(int(v) for v in tone)
    )
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))
    if grey:
        image = image.convert("L")
        if rng.random() < 0.4:
            lo, hi = rng.randint(40, 90), rng.randint(200, 235)
            image = image.point(lambda v: max(0, min(255, (v - lo) * 255 // (hi - lo))))
    return image


def photograph(rng: random.Random, page: Image.Image) -> Image.Image:
    """A phone photo of the page on a desk: perspective, uneven light, colour cast, maybe a shadow."""
    w, h = 1200, 1600
    desk = np.ones((h, w, 3), np.float32) * np.array(
        rng.choice([(120, 95, 70), (90, 90, 95), (150, 130, 110), (60, 60, 65)])
    )
    desk += np.random.default_rng(rng.randrange(1 << 30)).normal(0, 8, (h, w, 1))
    canvas = Image.fromarray(desk.clip(0, 255).astype(np.uint8))
    margin = 60
    corners = [
        (margin + rng.uniform(0, 120), margin + rng.uniform(0, 120)),
        (w - margin - rng.uniform(0, 120), margin + rng.uniform(0, 120)),
        (w - margin - rng.uniform(0, 120), h - margin - rng.uniform(0, 120)),
        (margin + rng.uniform(0, 120), h - margin - rng.uniform(0, 120)),
    ]
    source = [(0, 0), (page.width, 0), (page.width, page.height), (0, page.height)]
    coefficients = perspective(corners, source)
    warped = page.convert("RGB").transform((w, h), Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BICUBIC)
    mask = Image.new("L", page.size, 255).transform((w, h), Image.Transform.PERSPECTIVE, coefficients)
    canvas.paste(warped, (0, 0), mask)
    a = np.asarray(canvas, dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    angle = rng.uniform(0, 2 * math.pi)
    light = 1 - rng.uniform(0.1, 0.35) * ((xx / w - 0.5) * math.cos(angle) + (yy / h - 0.5) * math.sin(angle) + 0.5)
    a *= light[..., None]
    cast = rng.choice([(1.05, 1.0, 0.85), (0.9, 0.97, 1.08), (1.0, 1.02, 0.95), (1.08, 0.98, 0.9), (0.95, 1.0, 1.0)])
    a *= np.array(cast)
    if rng.random() < 0.4:
        x0 = rng.uniform(0, w)
        shadow = 1 - 0.35 * (1 / (1 + np.exp(-(xx - x0 - (yy - h / 2) * rng.uniform(-0.6, 0.6)) / 40)))
        a *= shadow[..., None]
    a += np.random.default_rng(rng.randrange(1 << 30)).normal(0, 3, a.shape)
    image = Image.fromarray(a.clip(0, 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.1)))


def perspective(target: list[tuple[float, float]], source: list[tuple[float, float]]) -> tuple[float, ...]:
    """Coefficients for Pillow's PERSPECTIVE transform, which maps output (target) points to input ones."""
    rows, values = [], []
    for (x, y), (u, v) in zip(target, source, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        values += [u, v]
    return tuple(np.linalg.solve(np.array(rows), np.array(values)).tolist())


def jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


# -- pictures that are not seals -----------------------------------------------------------------------------

RED = [(220, 30, 40), (200, 25, 35), (230, 50, 50), (190, 30, 45), (225, 35, 60)]
PALETTE = [(68, 114, 196), (240, 160, 40), (120, 120, 130), (90, 170, 100)]


def red_logo(rng: random.Random, company: str) -> Image.Image:
    image = Image.new("RGB", (620, 200), "white")
    draw = ImageDraw.Draw(image)
    red = rng.choice(RED)
    shape = rng.choice(["disc", "square", "diamond", "triangle", "ring-initials"])
    initials = "".join(rng.choice("ABCDEFGHJKLMNPQRSTWXYZ") for _ in range(2))
    if shape == "disc":
        draw.ellipse((20, 20, 180, 180), fill=red)
        draw.text((100, 100), initials, font=font("bold", 64), fill="white", anchor="mm")
    elif shape == "square":
        draw.rounded_rectangle((20, 20, 180, 180), 24, fill=red)
        draw.text((100, 100), company[2], font=font("bold", 96), fill="white", anchor="mm")
    elif shape == "diamond":
        draw.polygon([(100, 10), (190, 100), (100, 190), (10, 100)], fill=red)
    elif shape == "triangle":
        draw.polygon([(100, 20), (185, 175), (15, 175)], fill=red)
    else:
        draw.ellipse((20, 20, 180, 180), outline=red, width=24)
        draw.text((100, 100), initials, font=font("bold", 60), fill=red, anchor="mm")
    short = company[2:6]
    draw.text((210, 60), short, font=font("bold", 64), fill=red)
    draw.text(
        (212, 140),
        "".join(rng.choice("ABCDEFGHJKLMNPQRSTWXYZ") for _ in range(6)) + " GROUP",
        font=font("sans", 26),
        fill=red,
    )
    return image


def chart(rng: random.Random, kind: str | None = None) -> Image.Image:
    image = Image.new("RGB", (900, 560), "white")
    draw = ImageDraw.Draw(image)
    kind = kind or rng.choice(["bars", "pie", "donut"])
    title = rng.choice(["主要质量指标对比", "质量问题类别分布", "主营业务收入构成"])
    draw.text((450, 30), title, font=font("bold", 28), fill=(40, 40, 40), anchor="mm")
    colours = [rng.choice(RED), *PALETTE]
    if kind == "bars":
        draw.line((80, 480, 860, 480), fill=(60, 60, 60), width=2)
        draw.line((80, 80, 80, 480), fill=(60, 60, 60), width=2)
        series = rng.randint(2, 3)
        for group in range(3):
            for s in range(series):
                height = rng.randint(120, 380)
                x = 120 + group * 260 + s * 70
                draw.rectangle((x, 480 - height, x + 60, 480), fill=colours[s])
            draw.text(
                (120 + group * 260 + 70, 505),
                f"{2019 + group}年",
                font=font("sans", 22),
                fill=(40, 40, 40),
                anchor="mm",
            )
    else:
        shares = [rng.uniform(0.15, 0.6) for _ in range(rng.randint(3, 5))]
        total = sum(shares)
        start = -90.0
        box = (120, 90, 520, 490)
        for i, share in enumerate(shares):
            end = start + 360 * share / total
            draw.pieslice(box, start, end, fill=colours[i % len(colours)], outline="white", width=3)
            draw.rectangle((600, 140 + i * 50, 630, 170 + i * 50), fill=colours[i % len(colours)])
            draw.text(
                (645, 142 + i * 50), f"类别{i + 1} {100 * share / total:.1f}%", font=font("sans", 22), fill=(40, 40, 40)
            )
            start = end
        if kind == "donut":
            hole = rng.uniform(0.45, 0.62) * 200
            draw.ellipse((320 - hole, 290 - hole, 320 + hole, 290 + hole), fill="white")
    return image


def product_photo(rng: random.Random) -> Image.Image:
    """A workshop: boxes and cylinders (red machines, red cans) and red valve wheels, in perspective light."""
    w, h = 960, 640
    image = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(image)
    wall, floor = rng.choice([(200, 200, 195), (170, 175, 185)]), rng.choice([(90, 90, 85), (75, 85, 80)])
    draw.rectangle((0, 0, w, 330), fill=wall)
    draw.rectangle((0, 330, w, h), fill=floor)
    draw.line((0, 560, w, 500), fill=(210, 180, 40), width=8)
    for _ in range(rng.randint(3, 6)):
        colour = rng.choice([*RED, (230, 200, 60), (70, 130, 200), (100, 160, 100)])
        x, y = rng.randint(0, w - 200), rng.randint(150, 380)
        bw, bh = rng.randint(100, 260), rng.randint(100, 220)
        draw.rectangle((x, y, x + bw, y + bh), fill=colour)
        draw.rectangle((x + bw, y + 10, x + bw + 25, y + bh), fill=tuple(int(c * 0.6) for c in colour))
        draw.rectangle((x + 10, y + 10, x + bw - 10, y + 30), fill=tuple(min(255, int(c * 1.2) + 30) for c in colour))
    for _ in range(rng.randint(0, 2)):
        x, y, r = rng.randint(50, w - 120), rng.randint(380, 520), rng.randint(25, 45)
        draw.ellipse((x, y - r // 3, x + 2 * r, y + r // 3), fill=rng.choice(RED))
        draw.rectangle((x, y, x + 2 * r, y + 3 * r), fill=rng.choice(RED))
    for _ in range(rng.randint(1, 2)):
        x, y, r = rng.randint(100, w - 100), rng.randint(380, 560), rng.randint(30, 60)
        red = rng.choice(RED)
        squash = rng.uniform(0.8, 1.0)
        width = max(4, r // rng.choice([5, 6, 8]))
        draw.ellipse((x - r, y - r * squash, x + r, y + r * squash), outline=red, width=width)
        spokes, turn = rng.choice([3, 4, 4, 5, 6]), rng.uniform(0, math.pi)
        for k in range(spokes):
            angle = turn + 2 * math.pi * k / spokes
            draw.line((x, y, x + r * math.cos(angle), y + r * squash * math.sin(angle)), fill=red, width=width)
        draw.ellipse((x - width, y - width, x + width, y + width), fill=red)
    a = np.asarray(image, dtype=np.float32)
    a += np.random.default_rng(rng.randrange(1 << 30)).normal(0, 4, a.shape)
    return Image.fromarray(a.clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.0))


def quality_logo(rng: random.Random, kind: str | None = None) -> Image.Image:
    if (kind or rng.choice(["q-ring", "traffic-light"])) == "q-ring":
        image = Image.new("RGB", (300, 360), "white")
        draw = ImageDraw.Draw(image)
        red = rng.choice(RED)
        draw.ellipse((20, 20, 280, 280), outline=red, width=rng.randint(18, 30))
        draw.text((150, 150), "Q", font=font("bold", 200), fill=red, anchor="mm")
        draw.text((150, 320), "质量标杆", font=font("bold", 40), fill=red, anchor="mm")
        return image
    image = Image.new("RGB", (130, 310), "white")
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((5, 5, 125, 305), 20, fill=(40, 40, 45))
    for i, colour in enumerate([(200, 30, 30), (240, 180, 30), (40, 170, 70)]):
        draw.ellipse((20, 20 + i * 95, 110, 110 + i * 95), fill=colour)
    return image


# -- the documents -------------------------------------------------------------------------------------------


@dataclass
class Built:
    kind: str
    seal: bool
    company: str
    variant: str | None = None
    extras: list[str] = field(default_factory=list)
    pictures: list[tuple[bytes, bool]] = field(default_factory=list)
    """Each picture's bytes and whether it shows a seal, in document order."""
    red_text: bool = False


def stamped_page(rng: random.Random, form: Form, which: str) -> Image.Image:
    if which == "cover":
        page, spot = cover_page(form)
    else:
        page, spot, sign = opinion_page(form)
        if rng.random() < 0.5:
            signature(ImageDraw.Draw(page), rng, *sign)
    look = seal_look(rng, round(rng.uniform(38, 45) * MM))
    alpha = seal_alpha(rng, form.company, look)
    stamp(page, alpha, look.colour, (spot[0] + rng.randint(-40, 40), spot[1] + rng.randint(-30, 30)))
    return page


def build(rng: random.Random, kind: str) -> Built:
    form = new_form(rng)
    built = Built(kind, kind in STAMPED, form.company)

    def scanned(page: Image.Image, grey: bool = False) -> bytes:
        return jpeg(scan(rng, page, grey=grey), rng.randint(55, 70))

    if kind in ("scan-full", "grey-scan"):
        grey = kind == "grey-scan"
        where = rng.choice(["cover", "opinion", "both"])
        if grey and rng.random() < 0.4:
            built.variant = "stamp-page-only"
            built.pictures.append((scanned(stamped_page(rng, form, "opinion"), grey), True))
        else:
            cover = stamped_page(rng, form, "cover") if where in ("cover", "both") else cover_page(form)[0]
            built.pictures.append((scanned(cover, grey), where in ("cover", "both")))
            built.pictures.append((scanned(table_page(rng, form), grey), False))
            opinion = stamped_page(rng, form, "opinion") if where in ("opinion", "both") else opinion_page(form)[0]
            built.pictures.append((scanned(opinion, grey), where in ("opinion", "both")))
    elif kind == "scan-page":
        built.pictures.append((scanned(stamped_page(rng, form, rng.choice(["cover", "opinion"]))), True))
    elif kind == "e-seal":
        built.pictures.append((png(e_seal(rng, form.company)), True))
    elif kind == "photo":
        page = stamped_page(rng, form, rng.choice(["cover", "opinion"]))
        built.pictures.append((jpeg(photograph(rng, page), rng.randint(70, 88)), True))
    elif kind == "red-logo":
        built.pictures.append((png(red_logo(rng, form.company)), False))
    elif kind == "red-heading":
        built.red_text = True
        if rng.random() < 0.6:
            built.variant = "scanned-heading"
            built.pictures.append((scanned(red_heading_page(rng, form)), False))
    elif kind == "chart":
        built.pictures += [(jpeg(chart(rng), 90), False) for _ in range(rng.randint(1, 2))]
    elif kind == "photo-product":
        built.pictures += [(jpeg(product_photo(rng), 85), False) for _ in range(rng.randint(1, 2))]
    elif kind == "quality-logo":
        built.pictures.append((jpeg(quality_logo(rng), 90), False))
    elif kind == "unstamped-scan":
        grey = rng.random() < 0.4
        pages = [cover_page(form)[0], table_page(rng, form), opinion_page(form)[0]]
        if rng.random() < 0.4:
            pages = pages[2:]
        built.pictures += [(scanned(p, grey), False) for p in pages]
    elif kind == "signature":
        page, _spot, sign = opinion_page(form)
        signature(ImageDraw.Draw(page), rng, *sign)
        built.pictures.append((scanned(page, rng.random() < 0.3), False))
    if kind not in ("none", "chart", "photo-product") and rng.random() < 0.25:
        extra = rng.choice(["chart", "photo-product"])
        built.extras.append(extra)
        picture = chart(rng) if extra == "chart" else product_photo(rng)
        built.pictures.append((jpeg(picture, 85), False))
    return built


def write_docx(built: Built, form_title: str, path: Path) -> list[str]:
    """The Word form around the pictures; returns the media member name of each picture, in order."""
    document = Document()
    if built.red_text:
        heading = document.add_paragraph()
        run = heading.add_run(f"{built.company}文件")
        run.font.size, run.font.bold, run.font.color.rgb = Pt(26), True, RGBColor(0xD0, 0x1E, 0x23)
        rule = document.add_paragraph().add_run("━" * 30)
        rule.font.color.rgb = RGBColor(0xD0, 0x1E, 0x23)
    document.add_paragraph("附件2")
    document.add_heading("2022年全省质量标杆申报书", level=1)
    table = document.add_table(rows=0, cols=2)
    for label, value in [("申报单位", built.company), ("质量标杆名称", form_title), ("所属行业", "制造业")]:
        cells = table.add_row().cells
        cells[0].text, cells[1].text = label, value
    document.add_paragraph(PARAGRAPH)
    document.add_paragraph("五、申报单位意见")
    document.add_paragraph(OPINION)
    document.add_paragraph("申报单位（盖章）：")
    names = []
    for index, (data, _is_seal) in enumerate(built.pictures, 1):
        is_png = data.startswith(b"\x89PNG")
        document.add_picture(io.BytesIO(data), width=Mm(40) if is_png and built.seal else Mm(150))
        names.append(f"word/media/image{index}.{'png' if is_png else 'jpg'}")
    document.save(str(path))
    return names


def kinds_for(count: int, rng: random.Random) -> list[str]:
    """Kinds in the sample's proportions, shuffled: about half stamped."""
    weights = {**STAMPED, **UNSTAMPED}
    pool = [k for k, n in weights.items() for _ in range(n)]
    kinds = [pool[i % len(pool)] for i in range(count)]
    rng.shuffle(kinds)
    return kinds


def generate(out: Path, seed: int, count: int, progress: Callable[[int], None] | None = None) -> None:
    rng = random.Random(seed)
    (out / "docs").mkdir(parents=True, exist_ok=True)
    labels = {}
    for number, kind in enumerate(kinds_for(count, rng), 1):
        built = build(rng, kind)
        name = f"form-{number:03d}.docx"
        members = write_docx(built, rng.choice(TITLES), out / "docs" / name)
        labels[name] = {
            "company": built.company,
            "extras": built.extras,
            "kind": built.kind,
            "seal": built.seal,
            "seal_images": [m for m, (_data, is_seal) in zip(members, built.pictures, strict=True) if is_seal],
            "variant": built.variant,
        }
        if progress:
            progress(number)
    (out / "labels.json").write_text(json.dumps(labels, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=40)
    args = parser.parse_args()
    generate(args.out, args.seed, args.count)
    print(f"{args.count} forms in {args.out / 'docs'}, labels in {args.out / 'labels.json'}")


if __name__ == "__main__":
    main()

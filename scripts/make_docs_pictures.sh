#!/usr/bin/env bash
# Remake docs/digest.png, docs/digest-bureaus.png, docs/receipt.png, docs/rejection.png and docs/workbook.png: the staff digest, a
# receipt (受理回执), a rejection (退回通知) and the summary workbook (汇总表), built from the project's 13
# sample messages (daemon/resources/demo/) and the city bureaus' test emails (tests/fixtures/bureaus/).
#   scripts/make_docs_pictures.sh
# The HTML parts of the digest and the two replies are rendered by headless Chromium; the workbook goes
# through LibreOffice (PDF) and pdftoppm (PNG). Missing system tools come from apt when we are root; otherwise the script says what to
# install. Needs the `shenbao` command (pip install -e .). Safe to run again: it only replaces the pictures.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { say "$*"; exit 1; }

DOCS=docs
WIDTH=760          # CSS pixels: the layout's 680px column plus the grey margin around it
WORKBOOK_DPI=200   # pdftoppm resolution of the workbook picture (the sheet is scaled to fit the page width)
CHROMIUM_FLAGS=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
    --disable-background-networking --disable-component-update --disable-sync
    --hide-scrollbars --force-device-scale-factor=1)

# --- 1. the tools ------------------------------------------------------------------------------------
have_cjk_font() { command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh family 2>/dev/null)" ]; }

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
have_cjk_font || missing+=(fonts-noto-cjk)
# soffice alone (e.g. from libreoffice-writer) cannot open a workbook: Calc must be there
dpkg-query -W -f='${Status}' libreoffice-calc-nogui libreoffice-calc 2>/dev/null | grep -q 'ok installed' \
    || missing+=(libreoffice-calc-nogui)
{ command -v pdftoppm && command -v pdftotext && command -v pdfinfo; } >/dev/null 2>&1 || missing+=(poppler-utils)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        die "missing: ${missing[*]}; install them first (Debian, as root: apt-get install --no-install-recommends ${missing[*]})"
    fi
    say "installing ${missing[*]} (apt, no recommends)"
    started=$SECONDS
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    say "installed in $((SECONDS - started)) s"
fi
have_cjk_font || die "no CJK font found by fontconfig: Chinese would render as boxes (apt-get install fonts-noto-cjk)"
command -v shenbao >/dev/null 2>&1 || die "the shenbao command is not on PATH (pip install -e . in the repository)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/shenbao-docs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

chromium_run() {  # chromium_run LOG ARGS...: a fresh profile each time, as this machine needs
    local log=$1 profile
    shift
    profile=$(mktemp -d "$WORK/chromium-profile.XXXXXX")
    if ! timeout 120 chromium "${CHROMIUM_FLAGS[@]}" --user-data-dir="$profile" "$@" 2>>"$log"; then
        tail -n 20 "$log" >&2
        die "chromium failed (log above)"
    fi
}

# --- 2. realistic data from the sample messages --------------------------------------------------------
say "judging the 13 sample messages into a scratch database"
cat > "$WORK/shenbao.toml" <<'EOF'
[storage]
database = "sqlite:///shenbao.db"
files = "files"

[campaign]
name = "2022年全国质量标杆"
deadline = "2022-07-05T23:59:59+08:00"
roster = "roster.xlsx"

[smtp]
host = "smtp.example.cn"
username = "kejichu2019@shandong.cn"
sender = "山东省工业和信息化厅科技处 <kejichu2019@shandong.cn>"

[digest]
recipients = ["kejichu2019@shandong.cn"]
EOF
cp daemon/resources/demo/roster.xlsx "$WORK/roster.xlsx"
shenbao process --config "$WORK/shenbao.toml" daemon/resources/demo/ > "$WORK/process.log"
sed 's/^/    /' "$WORK/process.log" >&2

# --- 3. the digest, written to a folder instead of sent -------------------------------------------------
# the morning after the last sample arrived, so that the deadline line reads as it would have that day
shenbao digest --config "$WORK/shenbao.toml" --output "$WORK/out" --now 2022-07-07T08:30:00+08:00 >&2
eml=$(find "$WORK/out" -maxdepth 1 -name 'digest-*.eml' | head -n 1)
book=$(find "$WORK/out" -maxdepth 1 -name '*.xlsx' | head -n 1)
if [ -z "$eml" ] || [ -z "$book" ]; then die "shenbao digest wrote no .eml or no workbook into $WORK/out"; fi

# --- 4. HTML parts rendered by Chromium: the digest, a receipt and a rejection --------------------------
# The replies come from `shenbao demo`, which sends them to its loopback SMTP server and keeps them.
say "sending the replies to the sample messages (shenbao demo)"
shenbao demo --dir "$WORK/demo" > "$WORK/demo.log" 2>&1 || { cat "$WORK/demo.log" >&2; die "shenbao demo failed"; }

# html_of SOURCE PAGE: the text/html part of SOURCE (an .eml file, or `reply:<subject prefix>` for the
# first of the demo's replies, by sample, whose subject starts so) into PAGE, and a copy PAGE.measure.html
# that writes its own laid-out size into <title>, read back with --dump-dom.
html_of() {
    python3 - "$1" "$2" "$WORK/demo/replies" <<'PY'
import sys
from email import message_from_bytes, policy
from pathlib import Path

source, page, replies = sys.argv[1:]
if source.startswith("reply:"):
    prefix = source.removeprefix("reply:")
    found = [
        message
        for path in sorted(Path(replies).glob("*.eml"))
        if str((message := message_from_bytes(path.read_bytes(), policy=policy.default))["Subject"]).startswith(prefix)
    ]
    if not found:
        sys.exit(f"no reply whose subject starts with {prefix} in {replies}")
    message = found[0]
else:
    with open(source, "rb") as handle:
        message = message_from_bytes(handle.read(), policy=policy.default)
body = message.get_body(preferencelist=("html",))
if body is None:
    sys.exit(f"{source}: no text/html part")
html = body.get_content()
with open(page, "w", encoding="utf-8") as handle:
    handle.write(html)
script = ("<script>document.title = 'SIZE=' + Math.ceil(document.documentElement.scrollHeight) + 'x'"
          " + document.documentElement.scrollWidth;</script>")
with open(page + ".measure.html", "w", encoding="utf-8") as handle:
    handle.write(html.replace("</body>", script + "</body>", 1) if "</body>" in html else html + script)
PY
}

shoot() {  # shoot NAME SOURCE: docs/NAME.png from the HTML part of SOURCE (see html_of)
    local name=$1 page="$WORK/$1.html" size height page_width
    html_of "$2" "$page"
    say "rendering $name with headless Chromium"
    size=$(chromium_run "$WORK/chromium.log" --window-size="$WIDTH,100" --virtual-time-budget=3000 \
        --dump-dom "file://$page.measure.html" | grep -o 'SIZE=[0-9]*x[0-9]*' | head -n 1 || true)
    [ -n "$size" ] || die "could not measure the height of $name (see $WORK/chromium.log)"
    height=${size#SIZE=}; height=${height%x*}
    page_width=${size#*x}
    [ "$page_width" -le "$WIDTH" ] || say "warning: $name is ${page_width}px wide, wider than the ${WIDTH}px window"
    mkdir -p "$DOCS"
    rm -f "$DOCS/$name.png"
    chromium_run "$WORK/chromium.log" --window-size="$WIDTH,$height" --virtual-time-budget=3000 \
        --screenshot="$PWD/$DOCS/$name.png" "file://$page"
    [ -s "$DOCS/$name.png" ] || die "chromium wrote no $DOCS/$name.png"
}

shoot digest "$eml"

# The city bureaus' side: both calls, the bureaus' test emails (tests/fixtures/bureaus/), the digest the
# morning after the bureaus' deadline with each city's bundle.
say "judging the city bureaus' sample emails into a second scratch database"
mkdir -p "$WORK/bureaus"
python3 - "$WORK/bureaus/shenbao.toml" tests/fixtures/bureaus <<'PY'
import json, sys
from pathlib import Path

target, fixtures = Path(sys.argv[1]), Path(sys.argv[2])
spec = json.loads((fixtures / "expected.json").read_text(encoding="utf-8"))
lines = ['[storage]\ndatabase = "sqlite:///shenbao.db"\nfiles = "files"', '[campaign]\nname = "2022年质量标杆"']
for code, call in spec["calls"].items():
    keys = "".join(f"{k} = {json.dumps(v, ensure_ascii=False)}\n" for k, v in call.items())
    deadline = 'deadline = "2022-07-05T23:59:59+08:00"\n' if code == "national" else ""
    lines.append(f'[[campaign.calls]]\ncode = "{code}"\n{keys}bureau_deadline = "{spec["bureau_deadline"]}"\n{deadline}')
lines.append((fixtures / spec["config"]).read_text(encoding="utf-8"))
target.write_text("\n".join(lines), encoding="utf-8")
PY
shenbao process --config "$WORK/bureaus/shenbao.toml" tests/fixtures/bureaus/messages/ > "$WORK/bureaus/process.log"
sed 's/^/    /' "$WORK/bureaus/process.log" >&2
shenbao digest --config "$WORK/bureaus/shenbao.toml" --output "$WORK/bureaus/out" --now 2022-06-27T08:30:00+08:00 >&2
bureau_eml=$(find "$WORK/bureaus/out" -maxdepth 1 -name 'digest-*.eml' | head -n 1)
[ -n "$bureau_eml" ] || die "shenbao digest wrote no .eml into $WORK/bureaus/out"
shoot digest-bureaus "$bureau_eml"
shoot receipt "reply:【受理回执】"
shoot rejection "reply:【退回通知】"

# --- 5. the workbook: LibreOffice to PDF, pdftoppm to PNG ------------------------------------------------
say "converting the workbook with LibreOffice"
cp "$book" "$WORK/book.xlsx"
timeout 180 soffice --headless "-env:UserInstallation=file://$WORK/libreoffice" \
    --convert-to pdf --outdir "$WORK" "$WORK/book.xlsx" > "$WORK/soffice.log" 2>&1 \
    || { cat "$WORK/soffice.log" >&2; die "soffice failed"; }
[ -s "$WORK/book.pdf" ] || { cat "$WORK/soffice.log" >&2; die "soffice wrote no PDF"; }
pages=$(pdfinfo "$WORK/book.pdf" | awk '/^Pages:/ {print $2}')
first_page=$(pdftotext -f 1 -l 1 "$WORK/book.pdf" -)
for header in 序号 市 企业名称 质量标杆名称 状态 提交次数 问题 公章; do
    grep -q "$header" <<<"$first_page" \
        || say "warning: column $header is not on the first printed page: the sheet spills onto another page"
done
say "the workbook prints on $pages page(s) (its two sheets: 汇总表 and 全部来信)"
# Crop the first page to what is printed on it (text boxes from pdftotext -bbox, plus a margin), so the
# picture is the table rather than a mostly blank A4 sheet.
read -r crop_x crop_y crop_w crop_h < <(pdftotext -f 1 -l 1 -bbox "$WORK/book.pdf" - | python3 -c '
import re, sys
dpi, margin = float(sys.argv[1]), 14.0  # margin in points
text = sys.stdin.read()
page = re.search(r"<page width=\"([\d.]+)\" height=\"([\d.]+)\"", text)
boxes = [tuple(map(float, m)) for m in re.findall(
    r"xMin=\"([\d.]+)\" yMin=\"([\d.]+)\" xMax=\"([\d.]+)\" yMax=\"([\d.]+)\"", text)]
width, height = (float(v) for v in page.groups())
if not boxes:
    print(0, 0, round(width * dpi / 72), round(height * dpi / 72))
    sys.exit()
left = max(min(b[0] for b in boxes) - margin, 0)
top = max(min(b[1] for b in boxes) - margin, 0)
right = min(max(b[2] for b in boxes) + margin, width)
bottom = min(max(b[3] for b in boxes) + margin, height)
scale = dpi / 72
print(round(left * scale), round(top * scale), round((right - left) * scale), round((bottom - top) * scale))
' "$WORKBOOK_DPI") || die "could not find what is printed on the workbook's first page"
rm -f "$DOCS/workbook.png"
pdftoppm -png -r "$WORKBOOK_DPI" -f 1 -l 1 -singlefile -x "$crop_x" -y "$crop_y" -W "$crop_w" -H "$crop_h" \
    "$WORK/book.pdf" "$DOCS/workbook"
[ -s "$DOCS/workbook.png" ] || die "pdftoppm wrote no $DOCS/workbook.png"

# --- 6. where they are ---------------------------------------------------------------------------------
png_size() { python3 -c 'import struct, sys; d = open(sys.argv[1], "rb").read(24); print("%dx%d" % struct.unpack(">II", d[16:24]))' "$1"; }
for picture in "$DOCS"/{digest,digest-bureaus,receipt,rejection,workbook}.png; do
    printf '%s  %s px, %s bytes\n' "$PWD/$picture" "$(png_size "$picture")" "$(stat -c %s "$picture")"
done

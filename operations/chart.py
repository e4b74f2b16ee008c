"""The admin's chart of the last 30 days, drawn on the server as inline SVG: bars of orders
per day, a line of the median time from order to ready. No script, no style attribute
(the Content-Security-Policy has no 'unsafe-inline'): static/operations/fleet.css styles
the classes."""

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 40, 48, 12, 28  # room for the axes' labels


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def orders_chart(days: list[dict]) -> SafeString:
    """days: [{"day", "orders", "median_to_ready"}] as operations.selectors.orders_by_day."""
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    most_orders = max([day["orders"] for day in days] + [1])
    medians = [day["median_to_ready"] for day in days if day["median_to_ready"] is not None]
    slowest = max([*medians, 3600])
    step = plot_width / len(days)
    bottom = TOP + plot_height

    bars, points = [], []
    for index, day in enumerate(days):
        x = LEFT + index * step
        height = plot_height * day["orders"] / most_orders
        median = day["median_to_ready"]
        title = f"{day['day']:%d %b}: {day['orders']} orders"
        if median is not None:
            title += f", median {_hours(median)} to ready"
            points.append(f"{x + step / 2:.1f},{bottom - plot_height * median / slowest:.1f}")
        bars.append((x + 1, bottom - height, max(step - 2, 1), height, title))

    bar_elements = format_html_join(
        "",
        '<rect class="fleet-chart-bar" x="{}" y="{}" width="{}" height="{}">'
        "<title>{}</title></rect>",
        ((f"{x:.1f}", f"{y:.1f}", f"{w:.1f}", f"{h:.1f}", title) for x, y, w, h, title in bars),
    )
    line = (
        format_html('<polyline class="fleet-chart-line" points="{}"/>', " ".join(points))
        if points
        else ""
    )
    first, last = f"{days[0]['day']:%d %b}", f"{days[-1]['day']:%d %b}"
    return format_html(
        '<svg class="fleet-chart" viewBox="0 0 {w} {h}" role="img" '
        'aria-labelledby="fleet-chart-title">'
        '<title id="fleet-chart-title">Orders per day and median time from order to ready, '
        "{first} to {last}</title>"
        '<line class="fleet-chart-axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"/>'
        "{bars}{line}"
        '<text class="fleet-chart-label" x="{label_left}" y="{top_label}">{most}</text>'
        '<text class="fleet-chart-label" x="{label_left}" y="{bottom}">0</text>'
        '<text class="fleet-chart-label fleet-chart-ready" x="{label_right}" y="{top_label}">'
        "{slowest}</text>"
        '<text class="fleet-chart-label" x="{left}" y="{date_y}">{first}</text>'
        '<text class="fleet-chart-label fleet-chart-end" x="{right}" y="{date_y}">{last}'
        "</text></svg>",
        w=WIDTH,
        h=HEIGHT,
        first=first,
        last=last,
        left=LEFT,
        right=WIDTH - RIGHT,
        bottom=bottom,
        bars=bar_elements,
        line=line,
        label_left=LEFT - 6,
        label_right=WIDTH - RIGHT + 6,
        top_label=TOP + 8,
        most=most_orders,
        slowest=_hours(slowest),
        date_y=HEIGHT - 8,
    )

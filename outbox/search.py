"""The operators' searches and long lists, shared by every app's admin: a search box's
words, an order number written as one, and PostgreSQL's estimate of a list's rows."""

from django.db import connection
from django.db.models import QuerySet
from django.utils.text import smart_split, unescape_string_literal

ORDER_NUMBER_MAX = 2_147_483_647  # PositiveIntegerField's column is a 32-bit integer
# Under this many rows an exact COUNT(*) is cheap and so is collecting every match of a
# search; from it on the planner's estimate stands in for the count (the admin's
# paginator) and a search reads the newest platforms first, testing each.
MANY_ROWS = 10_000


def estimated_rows(queryset: QuerySet) -> int | None:
    """PostgreSQL's estimate of the rows the queryset returns, from its plan (no rows are
    read); None on another database."""
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        return int(cursor.fetchone()[0][0]["Plan"]["Plan Rows"])


def order_number_of(word: str) -> int | None:
    """The number the word writes, if it is written as the order number would be (the
    admin compared the number's text to the word)."""
    if word.isascii() and word.isdigit() and str(int(word)) == word:
        return int(word) if int(word) <= ORDER_NUMBER_MAX else None
    return None


def search_words(text: str) -> list[str]:
    """The words of a search box, split as Django's admin splits them."""
    words = []
    for word in smart_split(text):
        if word.startswith(('"', "'")) and word[0] == word[-1]:
            word = unescape_string_literal(word)
        words.append(word)
    return words

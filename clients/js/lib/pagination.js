'use strict';
// One page of a list and the way to the next; and walking every item lazily.

/**
 * A page: its `items`, `hasNext`, `nextToken` (the server's cursor, to pass back later as
 * `next_token`) and `nextPage()` (one request; null after the last page).
 */
class Page {
  constructor(items, nextQuery, fetchPage) {
    this.items = items;
    this.nextQuery = nextQuery;
    Object.defineProperty(this, '_fetchPage', { value: fetchPage });
  }

  get hasNext() { return this.nextQuery !== null; }

  get nextToken() { return this.nextQuery ? this.nextQuery.next_token ?? null : null; }

  async nextPage() {
    return this.nextQuery === null ? null : this._fetchPage(this.nextQuery);
  }

  [Symbol.iterator]() { return this.items[Symbol.iterator](); }
}

/**
 * Every item of a list, page after page: an async iterable that asks for a page only when
 * the items before it are used up (nothing at all before the first `for await` step).
 */
class PageIterator {
  constructor(firstPage) {
    Object.defineProperty(this, '_firstPage', { value: firstPage });
  }

  /** The pages themselves, lazily. */
  async *pages() {
    for (let page = await this._firstPage(); page; page = await page.nextPage()) yield page;
  }

  async *[Symbol.asyncIterator]() {
    for await (const page of this.pages()) yield* page.items;
  }

  /** Every item of every page, in one array (as many requests as there are pages). */
  async toArray() {
    const items = [];
    for await (const item of this) items.push(item);
    return items;
  }
}

const NEXT_LINK = /<([^>]*)>\s*;\s*rel="?next"?/;

/** The next page's query from `Link: <...>; rel="next"`, asked of our own host; or null. */
function nextPageQuery(headers) {
  const match = NEXT_LINK.exec(headers.get('link') || '');
  return match ? Object.fromEntries(new URL(match[1], 'http://link.invalid').searchParams) : null;
}

module.exports = { Page, PageIterator, nextPageQuery };

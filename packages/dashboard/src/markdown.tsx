// A model card (card.md) rendered as HTML: marked parses it (GitHub-flavoured: tables, code blocks),
// DOMPurify removes anything a card must not run (scripts, event handlers, javascript: links).
import { useMemo } from 'react';
import { marked } from 'marked';
import DOMPurify from 'dompurify';

export function Markdown(props: { text: string; testId?: string }) {
  const html = useMemo(() => {
    const raw = marked.parse(props.text, { async: false, gfm: true });
    const clean = DOMPurify.sanitize(raw, { USE_PROFILES: { html: true } });
    // Links in a card lead away from the dashboard: open them in a new tab, without an opener.
    const doc = new DOMParser().parseFromString(clean, 'text/html');
    for (const a of doc.querySelectorAll('a[href]')) {
      a.setAttribute('target', '_blank');
      a.setAttribute('rel', 'noopener noreferrer');
    }
    return doc.body.innerHTML;
  }, [props.text]);
  return <div className="markdown" data-testid={props.testId} dangerouslySetInnerHTML={{ __html: html }} />;
}

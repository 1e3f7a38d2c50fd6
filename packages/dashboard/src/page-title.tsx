import type { ReactNode } from 'react';

/** A page's heading and the one line under it that says what the page is for. */
export function PageTitle(props: { title: string; children: ReactNode }) {
  return (
    <>
      <h2>{props.title}</h2>
      <p className="lede" data-testid="page-lede">
        {props.children}
      </p>
    </>
  );
}

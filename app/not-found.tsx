import Link from 'next/link';

export default function NotFound() {
  return (
    <main className="mx-auto max-w-md px-6 py-24 text-center">
      <h1 className="text-xl font-semibold">Page not found</h1>
      <p className="mt-2 text-sm text-muted-foreground">There is no page at this address.</p>
      <p className="mt-6">
        <Link href="/" className="text-sm text-accent underline">
          Back to the overview
        </Link>
      </p>
    </main>
  );
}

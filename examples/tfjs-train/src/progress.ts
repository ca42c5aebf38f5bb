/** A one-line progress bar on a terminal; a line every `every` steps when output is not a TTY (CI logs). */
export function progressPrinter(total: number, every = 25): (step: number, loss: number) => void {
  const tty = process.stdout.isTTY === true;
  const width = 30;
  const started = performance.now();
  return (step, loss) => {
    const done = step + 1;
    const seconds = (performance.now() - started) / 1000;
    const text = `step ${String(done).padStart(String(total).length)}/${total}  loss ${loss.toFixed(4)}  ${seconds.toFixed(1)} s`;
    if (tty) {
      const filled = Math.round((width * done) / total);
      process.stdout.write(`\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${text}`);
      if (done === total) process.stdout.write("\n");
    } else if (done % every === 0 || done === total || step === 0) {
      process.stdout.write(`${text}\n`);
    }
  };
}

import { afterEach } from "vitest";
import { cleanup } from "@testing-library/svelte";

// Unmount components between tests (testing-library only does this itself with vitest globals).
afterEach(() => cleanup());

/** Shared by the root layout (server) and the theme toggle (client); not a client module. */
export const THEME_STORAGE_KEY = 'lockdeck-theme';

/**
 * Runs in <head> before the first paint (root layout), so the page never flashes the other
 * theme: a stored "light"/"dark" wins, else the operating system's preference. It also follows
 * the system's changes from then on (re-reading the stored choice each time, so an explicit
 * choice made later with the toggle still wins), from before React has even loaded.
 */
export const THEME_INIT_SCRIPT = `(function(){try{var k='${THEME_STORAGE_KEY}',m=window.matchMedia('(prefers-color-scheme: dark)');var s=function(){var t=localStorage.getItem(k);document.documentElement.setAttribute('data-theme',t==='dark'||(t!=='light'&&m.matches)?'dark':'light');};s();m.addEventListener('change',s);}catch(e){}})();`;

// The dashboard's shell: navigation, token login (any 401 leads to it, with the server's
// message), dark mode, and the page the URL's hash names.
import { h, render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';
import { getToken, setToken } from './api.js';
import { hrefOf, navigate, useRoute } from './route.js';
import { CampaignRunPage, CampaignsPage } from './pages/campaigns.js';
import { ComparePage } from './pages/compare.js';
import { FleetPage } from './pages/fleet.js';
import { JobPage } from './pages/job.js';
import { JobsPage } from './pages/jobs.js';
import { LoginPage } from './pages/login.js';
import { PredictorsPage } from './pages/predictors.js';
import { SubmitPage } from './pages/submit.js';

const html = htm.bind(h);
const DARK_KEY = 'acs.dark';

function useDarkMode() {
  const initial = localStorage.getItem(DARK_KEY);
  const [dark, setDark] = useState(initial === null ? matchMedia('(prefers-color-scheme: dark)').matches : initial === '1');
  document.documentElement.classList.toggle('dark', dark);
  const toggle = () => {
    localStorage.setItem(DARK_KEY, dark ? '0' : '1');
    setDark(!dark);
  };
  return [dark, toggle];
}

const PAGES = {
  jobs: JobsPage, job: JobPage, compare: ComparePage, fleet: FleetPage, predictors: PredictorsPage, submit: SubmitPage,
  campaigns: CampaignsPage, campaign: CampaignRunPage,
};

function App() {
  const route = useRoute();
  const [dark, toggleDark] = useDarkMode();
  const [refused, setRefused] = useState('');
  useEffect(() => {
    const onUnauthorized = (e) => {
      setRefused(`The server refused ${getToken() ? 'the stored token' : 'to answer without a token'}: ${e.detail}`);
      navigate('login');
    };
    window.addEventListener('acs-unauthorized', onUnauthorized);
    return () => window.removeEventListener('acs-unauthorized', onUnauthorized);
  }, []);
  const signOut = () => {
    setToken('');
    setRefused('');
    navigate('login');
  };
  const Page = PAGES[route.page];
  const link = (page, label) => html`<a href=${hrefOf(page)} class=${route.page === page ? 'active' : ''}>${label}</a>`;
  return html`<div class="app">
    <header>
      <a class="brand" href=${hrefOf('jobs')}>acs</a>
      <nav>${link('jobs', 'Jobs')}${link('fleet', 'Fleet')}${link('predictors', 'Predictors')}${link('campaigns', 'Campaigns')}${link('submit', 'Submit')}</nav>
      <span class="grow"></span>
      <button class="small" onClick=${toggleDark} title="dark mode" data-testid="dark-toggle">${dark ? 'light' : 'dark'}</button>
      ${getToken() ? html`<button class="small" onClick=${signOut}>sign out</button>`
        : html`<a href=${hrefOf('login')}>sign in</a>`}
    </header>
    <main>
      ${route.page === 'login' ? html`<${LoginPage} reason=${refused} />`
        : Page ? html`<${Page} route=${route} key=${`${route.page}/${route.id}`} />`
        : html`<p class="error">No page '${route.page}'. <a href=${hrefOf('jobs')}>Jobs</a></p>`}
    </main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));

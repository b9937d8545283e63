from django.urls import path

from liaison.views import accounts, health, pages

urlpatterns = [
    path("", pages.home, name="home"),
    path("login/", accounts.login_view, name="login"),
    path("logout/", accounts.logout_view, name="logout"),
    path("healthz", health.healthz, name="healthz"),
]

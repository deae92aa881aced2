from django.urls import path

from . import views

urlpatterns = [
    path("board/", views.board, name="board"),
    path("board/more/<slug:stage>/", views.board_more, name="board_more"),
    path("handoffs/<int:pk>/accept", views.accept, name="handoff_accept"),
    path("handoffs/<int:pk>/qualify", views.qualify, name="handoff_qualify"),
    path("handoffs/<int:pk>/qualify/dialog", views.qualify_dialog, name="handoff_qualify_dialog"),
    path("handoffs/<int:pk>/reject", views.reject, name="handoff_reject"),
    path("handoffs/<int:pk>/reject/dialog", views.reject_dialog, name="handoff_reject_dialog"),
    path("handoffs/<int:pk>/claim", views.claim, name="handoff_claim"),
    path("handoffs/<int:pk>/reassign", views.reassign, name="handoff_reassign"),
    path("handoffs/<int:pk>/reassign/dialog", views.reassign_dialog, name="handoff_reassign_dialog"),
    path("leads/<int:pk>/", views.lead_detail, name="lead_detail"),
]
